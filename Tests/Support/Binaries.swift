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

/// The Python app the gateway tests run as an environment (see the file for its routes).
public let gatewayTestApp: URL = envhubBinary.deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Tests/Support/gateway-test-app.py")

/// Sends `request` as written over a new TCP connection to 127.0.0.1:`port` and returns the
/// answer: up to its Content-Length, or until the server closes the connection.
public func rawHTTPExchange(port: Int, _ request: String) throws -> String {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestSetupError("cannot connect to port \(port)") }
    _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { break }
        received += buffer[0..<count]
        let text = String(decoding: received, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n"),
           let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
           let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
           text[end.upperBound...].utf8.count >= length {
            return text
        }
    }
    return String(decoding: received, as: UTF8.self)
}
