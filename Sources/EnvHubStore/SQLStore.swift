import EnvHubCore
import Foundation
import Logging

/// The one implementation of the store protocols, over SQLite or PostgreSQL.
public final class SQLStore: Sendable {
    public let database: any SQLDatabase
    /// Announces every write, here and on the other replicas, for caches to follow.
    public let changes: ChangeFeed

    public init(database: any SQLDatabase) {
        self.database = database
        self.changes = ChangeFeed(live: database.kind == .sqlite)
    }

    /// The service that brings other replicas' changes in: PostgreSQL only, since with SQLite
    /// there are no other replicas.
    public func changeListener(logger: Logger) -> PostgresChangeListener? {
        guard let postgres = database as? PostgresDatabase else { return nil }
        return PostgresChangeListener(address: postgres.address, feed: changes, logger: logger)
    }

    /// Runs `body` as one transaction and announces the changes it reports: to the other
    /// replicas by NOTIFY inside the transaction (delivered only if it commits), and to this
    /// replica's caches right after the commit, before the caller answers its client.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> (T, [StoreChange])) async throws -> T {
        let feed = changes
        let notifies = database.kind == .postgres
        let (result, changed) = try await database.transaction { sql in
            let (result, changed) = try await body(sql)
            if notifies {
                for change in changed { try await PostgresChangeListener.notify(change, from: feed, on: sql) }
            }
            return (result, changed)
        }
        for change in changed { feed.deliver(change) }
        return result
    }

    public var kind: DatabaseKind { database.kind }

    /// Sends `change` to the other replicas only (with SQLite there are none); this replica's
    /// own listeners are the caller's business.
    public func tellOtherReplicas(_ change: StoreChange) async throws {
        guard database.kind == .postgres else { return }
        try await PostgresChangeListener.notify(change, from: changes, on: database)
    }

    /// Opens the database named by `databaseURL` (`postgres://…`), or else the SQLite file
    /// `envhub.sqlite` in `dataDirectory`, which is created if missing. Call `migrate()` and
    /// keep `database.run()` running (it is a `Service`) while the store is used.
    public static func open(databaseURL: String?, dataDirectory: String, logger: Logger) async throws -> SQLStore {
        if let databaseURL, !databaseURL.isEmpty {
            return SQLStore(database: try PostgresDatabase(url: databaseURL, logger: logger))
        }
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw SQLDriverError.configuration("cannot create the data directory \(dataDirectory): \(error.localizedDescription)")
        }
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("envhub.sqlite").path
        return SQLStore(database: try await SQLiteDatabase.open(path: path, logger: logger))
    }

    /// Waits for a PostgreSQL server that is not up yet (`PostgresDatabase.waitUntilReachable`),
    /// then applies the migrations it lacks, in turn with other replicas (`Migrations.run`).
    @discardableResult
    public func migrate() async throws -> [Int] {
        let postgres = database as? PostgresDatabase
        try await postgres?.waitUntilReachable()
        return try await Migrations.run(on: database, logger: postgres?.logger)
    }

    /// Answers when the database does.
    public func ping() async throws { try await database.query("SELECT 1 AS ok") }

    /// Runs `body` while the database's connections are up, then shuts them down: for
    /// command-line tools that are not part of a service group.
    public func withRunning<T: Sendable>(_ body: @Sendable (SQLStore) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.database.run() }
            do {
                let result = try await body(self)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    static func newID() -> String { UUID().uuidString.lowercased() }

    /// Turns a unique-constraint failure into the 409 clients see.
    static func conflictOnDuplicate<T>(_ message: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch SQLDriverError.uniqueViolation {
            throw EnvHubError.conflict(message)
        }
    }
}

extension SQLStore: SettingsStore {
    public func setting(_ key: String) async throws -> String? {
        try await database.query("SELECT value FROM settings WHERE key = $1", [.text(key)]).first?.text("value")
    }

    public func settingInsertingIfAbsent(_ key: String, value: String) async throws -> String {
        try await database.query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [.text(key), .text(value)])
        guard let stored = try await setting(key) else {
            throw SQLDriverError.configuration("setting \(key) vanished right after it was written")
        }
        return stored
    }
}
extension SQLStore: ChangeAnnouncing {}
