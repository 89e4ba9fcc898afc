import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps one connection LISTENing on `envhub_changes` and hands other replicas' changes to the
/// feed. While it is not listening the feed is not live, so caches go to the database; after
/// every (re)connection caches start empty, since changes may have been missed meanwhile.
public struct PostgresChangeListener: Service {
    static let channel = "envhub_changes"

    let address: PostgresAddress
    let feed: ChangeFeed
    let logger: Logger
    let retryDelay: Duration

    public init(address: PostgresAddress, feed: ChangeFeed, logger: Logger, retryDelay: Duration = .seconds(1)) {
        self.address = address
        self.feed = feed
        self.logger = logger
        self.retryDelay = retryDelay
    }

    public func run() async throws {
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await listenOnce() }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.warning("change feed disconnected; retrying", metadata: ["error": "\(PostgresDatabase.connectionFailure(error).reason)"])
            }
            // A feed that was live starts counting again: only failures in a row back off.
            attempt = feed.isLive ? 1 : attempt + 1
            feed.setLive(false)
            // Retry soon, then back off to ten times the delay while the database is away.
            let delay = retryDelay * min(attempt, 10)
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: delay) })) != nil else { break }
        }
        feed.setLive(false)
    }

    private func listenOnce() async throws {
        let connection = try await PostgresConnection.connect(
            configuration: address.connectionConfiguration, id: 1, logger: logger)
        do {
            try await connection.listen(on: Self.channel) { notifications in
                feed.setLive(true)
                for try await notification in notifications {
                    let parts = notification.payload.split(separator: "|", maxSplits: 1)
                    guard parts.count == 2, parts[0] != feed.replicaID, let change = StoreChange(wireFormat: parts[1]) else { continue }
                    feed.deliver(change)
                }
            }
            throw SQLDriverError.configuration("the LISTEN connection ended")
        } catch {
            // The future-based close is not cancelled with the task, so the socket is always closed.
            let closed: EventLoopFuture<Void> = connection.close()
            try? await closed.get()
            throw error
        }
    }

    /// The statement that announces `change` to the other replicas, run in the writing transaction.
    static func notify(_ change: StoreChange, from feed: ChangeFeed, on sql: any SQLExecutor) async throws {
        try await sql.query("SELECT pg_notify($1, $2)", [.text(channel), .text("\(feed.replicaID)|\(change.wireFormat)")])
    }
}
