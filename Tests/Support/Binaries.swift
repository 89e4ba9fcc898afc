import EnvHubCore
import Foundation

/// The `envhub` executable of this build, which `scripts/test.sh` builds before the tests run.
public let envhubBinary: URL = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/envhub")
}()

/// Polls `probe` until it returns a value, failing after `timeout`.
public func waitFor<T>(_ what: String, timeout: Duration = .seconds(30), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw TestSetupError("timed out waiting for \(what)")
}

/// A built-in template as shipped, read from the source tree.
public func builtInTemplate(_ name: String) throws -> Template {
    let file = envhubBinary.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/EnvHubServer/Resources/templates/\(name).yaml")
    return try TemplateParser.parse(yaml: String(contentsOf: file, encoding: .utf8), file: file.lastPathComponent)
}

/// Runs `body`, failing with `what` if it has not finished within `limit` (it is cancelled).
public func withTimeout<T: Sendable>(
    _ what: String, _ limit: Duration = .seconds(60), _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() ?? nil else { throw TestSetupError("timed out after \(limit): \(what)") }
        return value
    }
}
