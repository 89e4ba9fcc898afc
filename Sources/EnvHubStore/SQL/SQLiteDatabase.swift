import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import NIOCore
import SQLiteNIO

/// SQLite in WAL mode: one writer connection behind a lock (SQLite has one writer at a time)
/// and a few reader connections for SELECTs outside transactions, which WAL lets run beside it.
public final class SQLiteDatabase: SQLDatabase {
    public let kind = DatabaseKind.sqlite
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let writeLock = AsyncLock()
    private let nextReader = NIOLockedValueBox(0)

    private init(writer: SQLiteConnection, readers: [SQLiteConnection]) {
        self.writer = writer
        self.readers = readers
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers: Int = 3, logger: Logger) async throws -> SQLiteDatabase {
        let writer = try await connect(path: path, logger: logger)
        try await writer.query("PRAGMA journal_mode=WAL", [])
        var readerConnections: [SQLiteConnection] = []
        for _ in 0..<readers {
            readerConnections.append(try await connect(path: path, logger: logger))
        }
        return SQLiteDatabase(writer: writer, readers: readerConnections)
    }

    private static func connect(path: String, logger: Logger) async throws -> SQLiteConnection {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        // Wait for a busy writer instead of failing; enforce the schema's foreign keys;
        // WAL with synchronous=NORMAL keeps every commit across a crash of the process.
        for pragma in ["PRAGMA busy_timeout=5000", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL"] {
            _ = try await connection.query(pragma, [])
        }
        return connection
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        if !readers.isEmpty, sql.utf8.starts(with: "SELECT".utf8) {
            let index = nextReader.withLockedValue { value in
                value = (value + 1) % readers.count
                return value
            }
            return try await Self.run(sql, binds, on: readers[index])
        }
        let writer = self.writer
        return try await writeLock.withLock { try await Self.run(sql, binds, on: writer) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let writer = self.writer
        return try await writeLock.withLock {
            let executor = Executor(connection: writer)
            _ = try await writer.query("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(executor)
                _ = try await writer.query("COMMIT", [])
                return result
            } catch {
                _ = try? await writer.query("ROLLBACK", [])
                throw error
            }
        }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        // The future-based close is not cancelled with the task, so the files are always closed.
        for connection in readers + [writer] {
            let closed: EventLoopFuture<Void> = connection.close()
            try? await closed.get()
        }
    }

    /// The connection of a transaction in progress; the lock is already held.
    private struct Executor: SQLExecutor {
        let connection: SQLiteConnection
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await SQLiteDatabase.run(sql, binds, on: connection)
        }
    }

    static func run(_ sql: String, _ binds: [SQLValue], on connection: SQLiteConnection) async throws -> [SQLRow] {
        let statement = sqliteSQL(sql)
        let data = binds.map(sqliteData)
        do {
            let rows = try await connection.query(statement, data)
            guard let first = rows.first else { return [] }
            let names = first.columns.map(\.name)
            return rows.map { row in SQLRow(columns: names, cells: row.columns.map { value(of: $0.data) }) }
        } catch let error as SQLiteError {
            switch error.reason {
            case .constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed:
                throw SQLDriverError.uniqueViolation(error.message)
            default:
                throw error
            }
        }
    }

    /// `$1` becomes SQLite's numbered parameter `?1`.
    private static func sqliteSQL(_ sql: String) -> String { sql.replacingDollarParameters() }

    private static func sqliteData(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .int(let value): .integer(Int(value))
        case .double(let value): .float(value)
        case .text(let value): .text(value)
        case .bool(let value): .integer(value ? 1 : 0)
        }
    }

    private static func value(of data: SQLiteData) -> SQLValue {
        switch data {
        case .null: .null
        case .integer(let value): .int(Int64(value))
        case .float(let value): .double(value)
        case .text(let value): .text(value)
        case .blob: .null
        }
    }
}

extension String {
    /// Rewrites `$N` placeholders as `?N`.
    fileprivate func replacingDollarParameters() -> String {
        var bytes = Array(utf8)
        for index in bytes.indices.dropLast()
        where bytes[index] == UInt8(ascii: "$") && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index + 1]) {
            bytes[index] = UInt8(ascii: "?")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
