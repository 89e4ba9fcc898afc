import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing
@testable import EnvHubServer

@Suite struct BoundedShutdownTests {
    /// A service that heeds neither a graceful shutdown nor cancellation until it is released.
    final class Stuck: Service, Sendable {
        private let waiting = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        private let released = NIOLockedValueBox(false)

        func run() async throws {
            await withCheckedContinuation { continuation in
                let resumeNow = released.withLockedValue { released in
                    if !released { waiting.withLockedValue { $0 = continuation } }
                    return released
                }
                if resumeNow { continuation.resume() }
            }
        }

        func release() {
            released.withLockedValue { $0 = true }
            waiting.withLockedValue { $0.take() }?.resume()
        }
    }

    struct Failing: Service {
        struct Failure: Error, Equatable {}
        func run() async throws { throw Failure() }
    }

    /// A service group with a stuck service in it still stops, once the patience is over.
    @Test func aServiceThatDoesNotStopIsLeftBehindAfterThePatience() async throws {
        let stuck = Stuck()
        defer { stuck.release() }
        let logger = Logger(label: "bounded-shutdown-test")
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: BoundedShutdown(service: stuck, name: "stuck", logger: logger, patience: .milliseconds(200)))],
            logger: logger))
        let stopped = try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                try await Task.sleep(for: .seconds(30))  // a hang's deadline, not a timing requirement
                return false
            }
            await group.triggerGracefulShutdown()
            let first = try await tasks.next()!
            tasks.cancelAll()
            return first
        }
        #expect(stopped, "the group should stop 200 ms after its shutdown began")
    }

    /// A service that ends in time ends as it ends: its error goes on.
    @Test func aServiceThatEndsPassesItsErrorOn() async throws {
        let bounded = BoundedShutdown(service: Failing(), name: "failing", logger: Logger(label: "bounded-shutdown-test"))
        await #expect(throws: Failing.Failure()) { try await bounded.run() }
    }
}
