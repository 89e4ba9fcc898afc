import Foundation

/// A value bound to a statement or read from a row, the same for SQLite and PostgreSQL.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)

    public static func date(_ date: Date) -> SQLValue { .int(Int64((date.timeIntervalSince1970 * 1000).rounded())) }
    public static func optionalText(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
}

/// One result row, read by column name. Columns are few, so a linear search over the names
/// (shared by every row of a result) beats hashing each row into a dictionary.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let cells: [SQLValue]

    public init(columns: [String], cells: [SQLValue]) {
        self.columns = columns
        self.cells = cells
    }

    private subscript(_ column: String) -> SQLValue? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return cells[index]
    }

    public func text(_ column: String) throws -> String {
        guard case .text(let value) = self[column] else { throw SQLDriverError.unexpectedColumn(column, "text") }
        return value
    }

    public func optionalText(_ column: String) throws -> String? {
        if case .null = self[column] ?? .null { return nil }
        return try text(column)
    }

    public func int(_ column: String) throws -> Int64 {
        switch self[column] {
        case .int(let value): return value
        case .double(let value): return Int64(value)
        default: throw SQLDriverError.unexpectedColumn(column, "integer")
        }
    }

    public func optionalInt(_ column: String) throws -> Int64? {
        if case .null = self[column] ?? .null { return nil }
        return try int(column)
    }

    /// SQLite keeps booleans as 0 and 1; PostgreSQL as booleans.
    public func bool(_ column: String) throws -> Bool {
        switch self[column] {
        case .bool(let value): return value
        case .int(let value): return value != 0
        default: throw SQLDriverError.unexpectedColumn(column, "boolean")
        }
    }

    /// Times are stored as milliseconds since 1970 in a BIGINT, the same in both databases.
    public func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try int(column)) / 1000)
    }

    public func optionalDate(_ column: String) throws -> Date? {
        try optionalInt(column).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}

/// Failures of the SQL layer that callers may act on.
public enum SQLDriverError: Error, Sendable, CustomStringConvertible {
    /// A UNIQUE or PRIMARY KEY constraint refused the write.
    case uniqueViolation(String)
    /// A column was missing or of another type than the code expects: a bug or a bad migration.
    case unexpectedColumn(String, String)
    /// The database URL or file could not be used.
    case configuration(String)
    /// The database server cannot be reached (down, refusing, or the pool gave up on it): the
    /// request may succeed later.
    case unavailable(String)

    public var description: String {
        switch self {
        case .uniqueViolation(let detail): "unique constraint violated: \(detail)"
        case .unexpectedColumn(let column, let type): "column \(column) is missing or not \(type)"
        case .configuration(let message), .unavailable(let message): message
        }
    }
}
