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
        await #expect(throws: ConnectionPoolError.requestCancelled) {
            try await PostgresDatabase.translatingErrors { throw ConnectionPoolError.requestCancelled }
        }
    }
}
