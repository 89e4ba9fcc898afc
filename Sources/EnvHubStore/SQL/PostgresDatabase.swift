import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// PostgreSQL through PostgresNIO's connection pool. Several hub replicas share one database.
public final class PostgresDatabase: SQLDatabase {
    public let kind = DatabaseKind.postgres
    private let client: PostgresClient
    private let logger: Logger

    /// Where the server is and who we are, from the URL.
    public let address: PostgresAddress

    public init(url: String, logger: Logger) throws {
        self.address = try PostgresAddress(url: url)
        var configuration = address.clientConfiguration
        configuration.options.maximumConnections = 20
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.translatingErrors {
            try await Self.collect(try await client.query(Self.postgresQuery(sql, binds), logger: logger))
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(Executor(connection: connection, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            // Surface the body's own error (a conflict, a validation error) rather than the wrapper.
            if let closureError = error.closureError { throw closureError }
            throw error
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
                try await PostgresDatabase.collect(
                    try await connection.query(PostgresDatabase.postgresQuery(sql, binds), logger: logger))
            }
        }
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

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        var names: [String]?
        for try await row in rows {
            let columns = names ?? row.map(\.columnName)
            names = columns
            result.append(SQLRow(columns: columns, cells: try row.map(value(of:))))
        }
        return result
    }

    static func translatingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            if error.serverInfo?[.sqlState] == "23505" {
                throw SQLDriverError.uniqueViolation(error.serverInfo?[.message] ?? "duplicate key")
            }
            throw error
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
