import Testing
import _ConnectionPoolModule
@testable import EnvHubStore

/// The pool's own errors, which PostgresNIO passes on as they are.
@Suite struct PostgresErrorTests {
    /// After a minute without a connection the pool fails every request at once: the database
    /// is out of reach (the API answers 503), not a fault of the hub's (500).
    @Test func aPoolThatGaveUpConnectingMeansTheDatabaseIsUnavailable() async {
        await #expect {
            try await PostgresDatabase.translatingErrors { throw ConnectionPoolError.connectionCreationCircuitBreakerTripped }
        } throws: { error in
            if case SQLDriverError.unavailable = error { return true }
            return false
        }
        await #expect(throws: ConnectionPoolError.poolShutdown) {
            try await PostgresDatabase.translatingErrors { throw ConnectionPoolError.poolShutdown }
        }
    }

    /// A wait for a connection that was cancelled is a cancellation, as `serve` expects of a
    /// start it was told to give up (it then stops quietly, exit 0).
    @Test func aCancelledWaitForAConnectionIsACancellation() async {
        await #expect(throws: CancellationError.self) {
            try await PostgresDatabase.translatingErrors { throw ConnectionPoolError.requestCancelled }
        }
    }
}
