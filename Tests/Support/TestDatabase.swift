import EnvHubStore
import Foundation
import Logging

/// The databases tests run against: a fresh SQLite file, and a fresh database on the
/// PostgreSQL server that `scripts/with-postgres.sh` starts (it exports
/// ENVHUB_TEST_POSTGRES_ADMIN_URL). Without that server the PostgreSQL cases fail; they never skip.
public enum TestDatabase: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// Where a new, empty database lives: a URL for PostgreSQL, a data directory for SQLite.
    public struct Location: Sendable {
        public let databaseURL: String?
        public let dataDirectory: String
    }

    /// Makes a new, empty database and runs `body` with its location; removes SQLite's files afterwards.
    public func withLocation<T: Sendable>(_ body: @Sendable (Location) async throws -> T) async throws -> T {
        try await TestProgress.run("\(self) database") {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("envhub-test-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            TestProgress.note("being created")
            let url: String? = self == .postgres ? try await Self.createPostgresDatabase() : nil
            TestProgress.note("in use")
            return try await body(Location(databaseURL: url, dataDirectory: directory.path))
        }
    }

    /// Opens a new, empty, migrated store, runs `body` with its connections up, then cleans up.
    public func withStore<T: Sendable>(_ body: @Sendable (SQLStore) async throws -> T) async throws -> T {
        try await withLocation { location async throws in
            let store = try await SQLStore.open(
                databaseURL: location.databaseURL, dataDirectory: location.dataDirectory, logger: quietLogger)
            return try await store.withRunning { store in
                try await store.migrate()
                return try await body(store)
            }
        }
    }

    /// A new database on the test server, so tests never see each other's rows.
    static func createPostgresDatabase() async throws -> String {
        guard let adminURL = ProcessInfo.processInfo.environment["ENVHUB_TEST_POSTGRES_ADMIN_URL"],
              var components = URLComponents(string: adminURL) else {
            throw TestSetupError(
                "ENVHUB_TEST_POSTGRES_ADMIN_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
        }
        let name = "envhub_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = SQLStore(database: try PostgresDatabase(url: adminURL, logger: quietLogger))
        try await admin.withRunning { store in
            try await store.database.query("CREATE DATABASE \(name)")
        }
        components.path = "/" + name
        guard let url = components.string else { throw TestSetupError("cannot build the test database URL") }
        return url
    }
}

/// A logger that drops everything, for tests.
public let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
