import EnvHubStore
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Remembers when projects were last used and writes that to the store in batches, so that
/// busy environments cost one write per project per flush, not one per request.
///
/// A project with a gateway exchange or WebSocket tunnel open (`opened` … `closed`) is in use
/// for as long as it stays open, however quiet: an app that computes for longer than the idle
/// timeout before it answers is not stopped under its own request, nor a desktop whose noVNC
/// tab is open but idle.
///
/// What is recorded goes to a `Shard`: one per event loop for the gateway, which opens and
/// closes an exchange for every request it forwards (so the loops never wait for each other's
/// lock), and `common` for everything else. `flush` gathers them all.
final class ActivityTracker: Sendable {
    /// One part of the record, written by the callers of one event loop (or by anyone: `common`).
    final class Shard: Sendable {
        /// What is known of one project's use: one entry per project, so that an exchange
        /// costs one dictionary look-up when it opens and one when it closes.
        fileprivate struct Use {
            /// When it was last used, since the last flush.
            var touched: Date?
            /// Exchanges open now.
            var open = 0

            mutating func touch(at date: Date) {
                touched = max(touched ?? .distantPast, date)
            }

            /// An exchange ended: its end is the project's last use.
            mutating func closed(at date: Date) {
                open = max(open - 1, 0)
                touch(at: date)
            }
        }

        fileprivate let uses = NIOLockedValueBox([String: Use]())

        func touch(_ projectID: String, at date: Date = Date()) {
            uses.withLockedValue { $0[projectID, default: Use()].touch(at: date) }
        }

        /// An exchange with the project began: it is in use until the matching `closed`, on
        /// this same shard. (This is all the gateway reports: what it answers itself, without
        /// the app, is no use of it.)
        func opened(_ projectID: String) {
            uses.withLockedValue { $0[projectID, default: Use()].open += 1 }
        }

        /// The exchange ended: its end is the project's last use.
        func closed(_ projectID: String) {
            let now = Date()
            uses.withLockedValue { $0[projectID, default: Use()].closed(at: now) }
        }

        /// Hands over what was used since the last flush and what is open now, and forgets
        /// the projects with nothing open.
        fileprivate func drain(touched: inout [String: Date], open: inout [String: Int]) {
            uses.withLockedValue { uses in
                for (projectID, use) in uses {
                    if let time = use.touched { touched[projectID] = max(touched[projectID] ?? time, time) }
                    if use.open > 0 { open[projectID, default: 0] += use.open }
                }
                uses = uses.compactMapValues { $0.open > 0 ? Use(open: $0.open) : nil }
            }
        }
    }

    /// For callers that are not on one event loop: WebSocket tunnels and the API.
    let common = Shard()
    private let shards = NIOLockedValueBox([ObjectIdentifier: Shard]())
    /// When each project kept in use by open exchanges was last written as used because of them.
    private let openWritten = NIOLockedValueBox([String: Date]())
    /// How often a project kept in use by an open exchange alone is written as used, in seconds.
    private let openRefresh: TimeInterval

    init(openRefresh: TimeInterval = 30) {
        self.openRefresh = openRefresh
    }

    /// The shard of `eventLoop`, made on first use. Look it up once per connection, not per request.
    func shard(for eventLoop: any EventLoop) -> Shard {
        shards.withLockedValue { shards in
            if let shard = shards[ObjectIdentifier(eventLoop)] { return shard }
            let shard = Shard()
            shards[ObjectIdentifier(eventLoop)] = shard
            return shard
        }
    }

    private var allShards: [Shard] { [common] + shards.withLockedValue { Array($0.values) } }

    /// Gateway exchanges and WebSocket tunnels open now (`opened` without `closed` yet).
    var openExchanges: Int {
        allShards.reduce(0) { total, shard in total + shard.uses.withLockedValue { $0.values.reduce(0) { $0 + $1.open } } }
    }

    /// Writes what was used since the last flush, and (every `openRefresh`) that projects
    /// with an exchange open are in use now.
    func flush(to store: any ProjectStore) async throws {
        let now = Date()
        var times: [String: Date] = [:]
        var open: [String: Int] = [:]
        for shard in allShards { shard.drain(touched: &times, open: &open) }
        openWritten.withLockedValue { written in
            written = written.filter { open[$0.key] != nil }  // no longer in use: written at once when used again
            for projectID in open.keys where now.timeIntervalSince(written[projectID] ?? .distantPast) >= openRefresh {
                times[projectID] = now
                written[projectID] = now
            }
        }
        do {
            try await store.recordActivity(times)
        } catch {
            for (id, time) in times { common.touch(id, at: time) }  // keep them for the next try
            throw error
        }
    }
}
