import Dispatch
import Foundation
import NIOConcurrencyHelpers
import Testing

/// What each test hub and test database is doing right now, for a run that hangs: a test
/// awaiting something that never comes leaves no trace in the threads' stacks, so
/// `scripts/swift-tests.sh` sends the run SIGUSR1 at its deadline and every unfinished step
/// is printed, with how long it has lasted.
public enum TestProgress {
    final class Entry: Sendable {
        let label: String
        let step = NIOLockedValueBox<(what: String, since: ContinuousClock.Instant)>(("beginning", .now))
        init(label: String) { self.label = label }
    }

    @TaskLocal static var current: Entry?
    private static let entries = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])

    /// Runs `body` as a step-by-step activity named `label` (which test, which hub), whose
    /// `note`s are printed if the run hangs before it ends.
    public static func run<T>(_ label: String, _ body: () async throws -> T) async rethrows -> T {
        _ = printer
        let entry = Entry(label: "\(Test.current?.name ?? "no test"): \(label)")
        entries.withLockedValue { $0[ObjectIdentifier(entry)] = entry }
        defer { entries.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(entry)) } }
        return try await $current.withValue(entry) { try await body() }
    }

    /// Says what the innermost `run` around the caller does from now on.
    public static func note(_ what: @autoclosure () -> String) {
        current?.step.withLockedValue { $0 = (what(), .now) }
    }

    /// Prints every unfinished activity on SIGUSR1, from a dispatch queue: it works while
    /// Swift's cooperative pool is blocked or idle.
    nonisolated(unsafe) private static let printer: DispatchSourceSignal = {  // set once, then only kept alive
        signal(SIGUSR1, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
        source.setEventHandler {
            let now = ContinuousClock.now
            let lines = entries.withLockedValue { Array($0.values) }.map { entry in
                let step = entry.step.withLockedValue { $0 }
                return "  \(entry.label): \(step.what), for \((now - step.since).components.seconds) s"
            }.sorted()
            let report = "test progress: \(lines.count) unfinished\n" + lines.map { $0 + "\n" }.joined()
            FileHandle.standardError.write(Data(report.utf8))
        }
        source.resume()
        return source
    }()
}
