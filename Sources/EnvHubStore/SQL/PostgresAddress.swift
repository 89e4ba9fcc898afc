import Foundation
import PostgresNIO

/// The parts of `postgres://user:password@host:port/database` (also `postgresql://`).
/// `?sslmode=disable` is the only TLS mode supported for now, so the URL must not ask for another.
public struct PostgresAddress: Sendable {
    public let host: String
    public let port: Int
    public let username: String
    public let password: String?
    public let database: String?

    /// `variable` names where the URL came from, for the error message.
    public init(url: String, variable: String = "ENVHUB_DATABASE_URL") throws {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty
        else {
            throw SQLDriverError.configuration("\(variable) must look like postgres://user:password@host:5432/database")
        }
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        guard sslmode == "disable" else {
            throw SQLDriverError.configuration("sslmode=\(sslmode) is not supported yet; use sslmode=disable on a trusted network")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user?.removingPercentEncoding ?? "postgres"
        self.password = components.password?.removingPercentEncoding
        self.database = database.isEmpty ? nil : database
    }

    public var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: .disable)
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable)
    }
}
