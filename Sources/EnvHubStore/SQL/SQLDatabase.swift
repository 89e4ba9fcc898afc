import ServiceLifecycle

/// Runs statements. Placeholders are written `$1`, `$2`, … for both databases.
public protocol SQLExecutor: Sendable {
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    public func query(_ sql: String) async throws -> [SQLRow] { try await query(sql, []) }
}

/// Which database a store runs on.
public enum DatabaseKind: String, Sendable {
    case sqlite
    case postgres
}

/// A database: statements outside a transaction autocommit; `transaction` runs its body as
/// one unit that commits when the body returns and rolls back when it throws. It is a
/// `Service`: its connections live while `run()` runs.
public protocol SQLDatabase: SQLExecutor, Service {
    var kind: DatabaseKind { get }
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
}
