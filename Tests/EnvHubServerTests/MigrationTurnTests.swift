import EnvHubStore
import EnvHubTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Testing

/// Hub replicas that start together on one PostgreSQL database migrate it in turn.
@Suite struct MigrationTurnTests {
    /// A replica that finds another migrating the database waits its turn, saying so, obeys a
    /// stop meanwhile, and starts once the turn comes.
    @Test func serveWaitsItsTurnToMigrateAndStopsWhenTold() async throws {
        try await TestDatabase.postgres.withLocation { location async throws in
            let env = CommandLineTests.environment(location)
            let other = try PostgresDatabase(url: try #require(location.databaseURL), logger: Logger(label: "other replica"))
            try await SQLStore(database: other).withRunning { store in
                let (taken, tookLock) = AsyncStream.makeStream(of: Void.self)
                let (released, release) = AsyncStream.makeStream(of: Void.self)
                async let migrating: Void = store.database.transaction { sql in
                    try await sql.query("SELECT pg_advisory_xact_lock(\(Migrations.lockKey))")
                    tookLock.yield()
                    for await _ in released { break }
                }
                for await _ in taken { break }

                let stopped = try EnvHubProcess(["serve", "--port", "0"], env: env)
                defer { stopped.kill() }
                try await stopped.waitForOutput("waiting for another replica to finish migrating the database")
                stopped.terminate()
                #expect(try await stopped.waitForExit(timeout: .seconds(15)) == 0, "\(stopped.output)")
                #expect(stopped.output.contains("envhub stopped before it was ready"), "\(stopped.output)")

                let waiting = try EnvHubProcess(["serve", "--port", "0"], env: env)
                defer { waiting.kill() }
                try await waiting.waitForOutput("waiting for another replica to finish migrating the database")
                #expect(!waiting.output.contains("listening on"))
                release.yield()
                try await migrating
                let port = try await waiting.waitForPort()
                let (_, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/healthz")!)
                #expect((response as? HTTPURLResponse)?.statusCode == 200)
                waiting.terminate()
                #expect(try await waiting.waitForExit(timeout: .seconds(15)) == 0, "\(waiting.output)")
            }
        }
    }
}
