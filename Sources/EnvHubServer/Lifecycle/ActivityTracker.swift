import EnvHubStore
import Foundation
import NIOConcurrencyHelpers

/// Remembers when projects were last used and writes that to the store in batches, so that
/// busy environments cost one write per project per flush, not one per request.
///
/// A project with a gateway exchange or WebSocket tunnel open (`opened` … `closed`) is in use
/// for as long as it stays open, however quiet: an app that computes for longer than the idle
/// timeout before it answers is not stopped under its own request, nor a desktop whose noVNC
/// tab is open but idle.
final class ActivityTracker: Sendable {
    /// What is known of one project's use: one entry per project, so that an exchange costs
    /// one dictionary look-up when it opens and one when it closes (the gateway does both
    /// for every request it forwards).
    private struct Use {
        /// When it was last used, since the last flush.
        var touched: Date?
        /// Exchanges open now.
        var open = 0
        /// When it was last written as used because of them.
        var openWritten: Date?

        mutating func touch(at date: Date) {
            touched = max(touched ?? .distantPast, date)
        }

        /// An exchange ended: its end is the project's last use.
        mutating func closed(at date: Date) {
            open = max(open - 1, 0)
            if open == 0 { openWritten = nil }
            touch(at: date)
        }
    }

    private let state = NIOLockedValueBox([String: Use]())
    /// How often a project kept in use by an open exchange alone is written as used, in seconds.
    private let openRefresh: TimeInterval

    init(openRefresh: TimeInterval = 30) {
        self.openRefresh = openRefresh
    }

    /// Gateway exchanges and WebSocket tunnels open now (`opened` without `closed` yet).
    var openExchanges: Int { state.withLockedValue { $0.values.reduce(0) { $0 + $1.open } } }

    func touch(_ projectID: String, at date: Date = Date()) {
        state.withLockedValue { $0[projectID, default: Use()].touch(at: date) }
    }

    /// An exchange with the project began: it is in use until the matching `closed`. (This
    /// is all the gateway reports: what it answers itself, without the app, is no use of it.)
    func opened(_ projectID: String) {
        state.withLockedValue { $0[projectID, default: Use()].open += 1 }
    }

    /// The exchange ended: its end is the project's last use.
    func closed(_ projectID: String) {
        let now = Date()
        state.withLockedValue { uses in
            uses[projectID, default: Use()].closed(at: now)
        }
    }

    /// Writes what was touched since the last flush, and (every `openRefresh`) that projects
    /// with an exchange open are in use now.
    func flush(to store: any ProjectStore) async throws {
        let now = Date()
        let times = state.withLockedValue { uses in
            var times: [String: Date] = [:]
            for (projectID, var use) in uses {
                if use.open > 0, now.timeIntervalSince(use.openWritten ?? .distantPast) >= openRefresh {
                    times[projectID] = now
                    use.openWritten = now
                } else if let touched = use.touched {
                    times[projectID] = touched
                }
                use.touched = nil
                uses[projectID] = use.open > 0 ? use : nil  // nothing left to remember of a project not in use
            }
            return times
        }
        do {
            try await store.recordActivity(times)
        } catch {
            for (id, time) in times { touch(id, at: time) }  // keep them for the next try
            throw error
        }
    }
}
