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
    private struct State {
        var touched: [String: Date] = [:]
        /// Exchanges open per project.
        var open: [String: Int] = [:]
        /// When each of those projects was last written as used because of them.
        var openWritten: [String: Date] = [:]

        mutating func touch(_ projectID: String, at date: Date) {
            touched[projectID] = max(touched[projectID] ?? .distantPast, date)
        }
    }

    private let state = NIOLockedValueBox(State())
    /// How often a project kept in use by an open exchange alone is written as used, in seconds.
    private let openRefresh: TimeInterval

    init(openRefresh: TimeInterval = 30) {
        self.openRefresh = openRefresh
    }

    /// Gateway exchanges and WebSocket tunnels open now (`opened` without `closed` yet).
    var openExchanges: Int { state.withLockedValue { $0.open.values.reduce(0, +) } }

    func touch(_ projectID: String, at date: Date = Date()) {
        state.withLockedValue { $0.touch(projectID, at: date) }
    }

    /// An exchange with the project began: it is in use until the matching `closed`. (This
    /// is all the gateway reports: what it answers itself, without the app, is no use of it.)
    func opened(_ projectID: String) {
        state.withLockedValue { $0.open[projectID, default: 0] += 1 }
    }

    /// The exchange ended: its end is the project's last use.
    func closed(_ projectID: String) {
        let now = Date()
        state.withLockedValue { state in
            let left = (state.open[projectID] ?? 1) - 1
            state.open[projectID] = left > 0 ? left : nil
            if left <= 0 { state.openWritten[projectID] = nil }
            state.touch(projectID, at: now)
        }
    }

    /// Writes what was touched since the last flush, and (every `openRefresh`) that projects
    /// with an exchange open are in use now.
    func flush(to store: any ProjectStore) async throws {
        let now = Date()
        let times = state.withLockedValue { state in
            defer { state.touched.removeAll() }
            var times = state.touched
            for projectID in state.open.keys where now.timeIntervalSince(state.openWritten[projectID] ?? .distantPast) >= openRefresh {
                times[projectID] = now
                state.openWritten[projectID] = now
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
