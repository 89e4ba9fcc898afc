import ArgumentParser
import EnvHubServer
import Foundation
import Logging

/// Options shared by every command that opens the store, each falling back to its
/// ENVHUB_* environment variable and then to the single-machine default.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory for the SQLite database and environment data. Env: ENVHUB_DATA_DIR. Default: ./envhub-data")
    var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database?sslmode=disable to use PostgreSQL instead of SQLite. Env: ENVHUB_DATABASE_URL")
    var databaseURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Env: ENVHUB_LOG_LEVEL. Default: info")
    var logLevel: String?

    @Option(name: .customLong("templates-dir"), help: "Directory of more template YAML files. Env: ENVHUB_TEMPLATES_DIR")
    var templatesDirectory: String?

    func apply(to config: inout AppConfig) throws {
        let env = ProcessInfo.processInfo.environment
        config.dataDirectory = dataDirectory ?? env["ENVHUB_DATA_DIR"] ?? config.dataDirectory
        config.databaseURL = databaseURL ?? env["ENVHUB_DATABASE_URL"]
        config.templatesDirectory = templatesDirectory ?? env["ENVHUB_TEMPLATES_DIR"]
        if let level = logLevel ?? env["ENVHUB_LOG_LEVEL"] {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ValidationError("log level '\(level)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            config.logLevel = parsed
        }
    }

    func config() throws -> AppConfig {
        var config = AppConfig()
        try apply(to: &config)
        return config
    }

    func logger(_ config: AppConfig) -> Logger {
        var logger = Logger(label: "envhub")
        logger.logLevel = config.logLevel
        return logger
    }
}

/// Reads a boolean environment variable: true/1/yes/on or false/0/no/off.
func environmentFlag(_ name: String) throws -> Bool? {
    guard let value = ProcessInfo.processInfo.environment[name] else { return nil }
    switch value.lowercased() {
    case "1", "true", "yes", "on": return true
    case "0", "false", "no", "off", "": return false
    default: throw ValidationError("\(name) must be true or false, not '\(value)'")
    }
}
