import EnvHubTestSupport
import PostgresNIO
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
        await #expect {
            try await PostgresDatabase.translatingErrors { throw ConnectionPoolError.poolShutdown }
        } throws: { error in
            if case SQLDriverError.unavailable = error { return true }
            return false
        }
    }

    /// A query handed to a connection that has closed fails at once. PostgresNIO's own
    /// `query` never answers it (the write fails, and nothing fails the query's promise): a
    /// query racing the pool's shutdown hung a hub's shutdown that way.
    @Test func aQueryOnAClosedConnectionFailsInsteadOfWaitingForever() async throws {
        let connection = try await TestDatabase.postgres.withLocation { location in
            let address = try PostgresAddress(url: try #require(location.databaseURL))
            return try await PostgresConnection.connect(configuration: address.connectionConfiguration, id: 1, logger: quietLogger)
        }
        try await connection.close().get()
        enum Outcome: Sendable { case answered, failed(any Error), waiting }
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        // Unstructured, so that a query that never ends fails the test instead of hanging it.
        Task {
            do {
                _ = try await PostgresDatabase.rows(of: "SELECT 1 AS one", on: connection, logger: quietLogger)
                report.yield(.answered)
            } catch {
                report.yield(.failed(error))
            }
        }
        let watch = Task {
            try await Task.sleep(for: .seconds(10))
            report.yield(.waiting)
        }
        defer { watch.cancel() }
        var iterator = outcomes.makeAsyncIterator()
        switch await iterator.next() {
        case .failed(SQLDriverError.unavailable(let reason)): #expect(reason == "the database connection closed")
        case let outcome: Issue.record("expected the query to fail as unavailable at once, got \(String(describing: outcome))")
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
