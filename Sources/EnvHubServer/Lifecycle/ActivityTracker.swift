import EnvHubStore
import Foundation
import NIOConcurrencyHelpers

/// Remembers when projects were last used and writes that to the store in batches, so that
/// busy environments cost one write per project per flush, not one per request.
final class ActivityTracker: Sendable {
    private let pending = NIOLockedValueBox<[String: Date]>([:])

    func touch(_ projectID: String, at date: Date = Date()) {
        pending.withLockedValue { $0[projectID] = max($0[projectID] ?? .distantPast, date) }
    }

    /// Writes what was touched since the last flush.
    func flush(to store: any ProjectStore) async throws {
        let times = pending.withLockedValue { pending in
            defer { pending.removeAll() }
            return pending
        }
        do {
            try await store.recordActivity(times)
        } catch {
            for (id, time) in times { touch(id, at: time) }  // keep them for the next try
            throw error
        }
    }
}
