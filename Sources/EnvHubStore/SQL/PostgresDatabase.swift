import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import _ConnectionPoolModule

/// PostgreSQL through PostgresNIO's connection pool. Several hub replicas share one database.
public final class PostgresDatabase: SQLDatabase {
    public let kind = DatabaseKind.postgres
    private let client: PostgresClient
    let logger: Logger

    /// Where the server is and who we are, from the URL.
    public let address: PostgresAddress

    public init(url: String, logger: Logger) throws {
        self.address = try PostgresAddress(url: url)
        var configuration = address.clientConfiguration
        configuration.options.maximumConnections = 20
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Connects once outside the pool until the server lets us in, retrying for `patience`
    /// while it is down or starting: the pool would wait a minute and then fail without saying
    /// why. What waiting cannot mend (a wrong password, no such database) fails at once.
    public func waitUntilReachable(patience: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + patience
        var failures = 0
        while true {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: address.connectionConfiguration, id: 0, logger: logger)
                try? await connection.close()
                return
            } catch {
                let (reason, transient) = Self.connectionFailure(error)
                let message = "the database at \(address.host):\(address.port) cannot be reached: \(reason)"
                guard transient, ContinuousClock.now < deadline else { throw SQLDriverError.unavailable(message) }
                if failures % 10 == 0 { logger.warning("waiting for the database", metadata: ["reason": "\(message)"]) }
                failures += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Why a connection could not be made, and whether trying again may help.
    static func connectionFailure(_ error: any Error) -> (reason: String, transient: Bool) {
        guard let error = error as? PSQLError else { return (String(describing: error), false) }
        if error.code == .connectionError { return (error.underlying.map { "\($0)" } ?? "no connection", true) }
        guard let message = error.serverInfo?[.message] else { return (String(reflecting: error), false) }
        // 57P03: the server is starting or stopping; 53300: it has no connection to spare.
        return (message, ["57P03", "53300"].contains(error.serverInfo?[.sqlState] ?? ""))
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.translatingErrors {
            try await client.withConnection { connection in
                try await Executor(connection: connection, logger: logger).query(sql, binds)
            }
        }
    }

    /// BEGIN, `body`, COMMIT on one connection; ROLLBACK if `body` throws, whose error goes on.
    /// (Not PostgresNIO's `withTransaction`, which sends its statements the way `rows` avoids.)
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await Self.translatingErrors {
            try await client.withConnection { connection in
                let sql = Executor(connection: connection, logger: logger)
                try await sql.query("BEGIN")
                let value: T
                do {
                    value = try await body(sql)
                } catch {
                    _ = try? await sql.query("ROLLBACK")
                    throw error
                }
                try await sql.query("COMMIT")
                return value
            }
        }
    }

    public func run() async throws {
        await client.run()
    }

    private struct Executor: SQLExecutor {
        let connection: PostgresConnection
        let logger: Logger
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await PostgresDatabase.translatingErrors {
                try await PostgresDatabase.rows(of: PostgresDatabase.postgresQuery(sql, binds), on: connection, logger: logger)
            }
        }
    }

    /// Runs `query` on `connection` and collects its rows, handing it to the connection from
    /// the connection's event loop, and only while the connection is open. PostgresNIO 1.33.2
    /// writes a query to its channel without a promise for the write, so a query written as
    /// the connection closes (the pool shutting down, the server going away) is never answered
    /// and whoever awaits it waits forever. A stress test of queries racing the pool's shutdown
    /// hung that way in about one run in three; a hub's shutdown hung on it twice in CI. On the
    /// event loop nothing can close the connection between the check and the write.
    static func rows(of query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> [SQLRow] {
        let result = try await connection.eventLoop.flatSubmit { () -> EventLoopFuture<PostgresQueryResult> in
            guard !connection.isClosed else {
                return connection.eventLoop.makeFailedFuture(SQLDriverError.unavailable("the database connection closed"))
            }
            return connection.query(query, logger: logger)
        }.get()
        return try collect(result.rows)
    }

    static func postgresQuery(_ sql: String, _ binds: [SQLValue]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .null: bindings.appendNull()
            case .int(let value): bindings.append(value)
            case .double(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .bool(let value): bindings.append(value)
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    static func collect(_ rows: [PostgresRow]) throws -> [SQLRow] {
        guard let columns = rows.first?.map(\.columnName) else { return [] }
        return try rows.map { SQLRow(columns: columns, cells: try $0.map(value(of:))) }
    }

    /// The errors callers act on: a duplicate key (`uniqueViolation`), a database out of
    /// reach (`unavailable`, which the API answers with 503) and cancellation (`CancellationError`).
    static func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            if error.serverInfo?[.sqlState] == "23505" {
                throw SQLDriverError.uniqueViolation(error.serverInfo?[.message] ?? "duplicate key")
            }
            if error.code == .connectionError || error.code == .serverClosedConnection {
                throw SQLDriverError.unavailable("the database connection failed: \(error.underlying.map { "\($0)" } ?? "closed")")
            }
            throw error
        } catch let error as ConnectionPoolError where error == .connectionCreationCircuitBreakerTripped {
            // The pool could not connect for a minute; it now refuses requests at once, until
            // a connection succeeds again.
            throw SQLDriverError.unavailable("the hub has not been able to connect to the database for a minute")
        } catch let error as ConnectionPoolError where error == .poolShutdown {
            throw SQLDriverError.unavailable("the hub is closing its database connections")
        } catch let error as ConnectionPoolError where error == .requestCancelled {
            // The task waiting for a connection was cancelled (`serve` told to stop while migrating).
            throw CancellationError()
        }
    }

    private static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .float8, .float4: return .double(try cell.decode(Double.self))
        default: return .text(try cell.decode(String.self))
        }
    }
}
