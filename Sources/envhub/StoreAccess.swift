import EnvHubServer
import EnvHubStore
import Foundation
import Logging

/// Opens the configured store, migrates it, runs `body` and closes it again.
func withStore<T: Sendable>(_ config: AppConfig, _ body: @Sendable (SQLStore) async throws -> T) async throws -> T {
    var logger = Logging.Logger(label: "envhub")
    logger.logLevel = config.logLevel
    let store = try await SQLStore.open(databaseURL: config.databaseURL, dataDirectory: config.dataDirectory, logger: logger)
    return try await store.withRunning { store in
        try await store.migrate()
        return try await body(store)
    }
}
