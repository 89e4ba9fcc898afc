import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// What a write changed, so that every replica can drop what it cached of it.
public enum StoreChange: Sendable, Hashable {
    /// A user's projects: created, changed or deleted.
    case projects(ownerID: String)
    /// When a user's projects were last used (`last_activity`), and nothing else about them:
    /// caches that show that time drop what they hold, caches that route requests keep it
    /// (the gateway records use every few seconds while an app is busy).
    case activity(ownerID: String)
    /// A user: profile, role, password, sessions, or the user deleted.
    case user(id: String)
    /// Anything: a replica lost its connection to the feed and may have missed changes.
    case everything
    /// Not a write: news for listeners on every replica (`topic` has no `:`), such as the
    /// progress of a start. Sent with `ChangeAnnouncing.tellOtherReplicas`; at most 7,000 bytes.
    case message(topic: String, payload: String)
}

/// Tells in-memory caches about writes, on this replica at once and on the others through
/// PostgreSQL LISTEN/NOTIFY (`PostgresChangeListener`). Caches may serve from memory only
/// while the feed `isLive`: with SQLite there are no other replicas, so it always is; with
/// PostgreSQL only while this replica is listening.
public final class ChangeFeed: Sendable {
    /// Identifies this replica's own notifications when they come back from PostgreSQL.
    public let replicaID = UUID().uuidString.lowercased()
    private let subscribers = NIOLockedValueBox<[@Sendable (StoreChange) -> Void]>([])
    /// Read by the gateway for every request: an atomic, not a lock both event loops would take.
    private let live: Synchronization.Atomic<Bool>

    public init(live: Bool) {
        self.live = Synchronization.Atomic(live)
    }

    public var isLive: Bool { live.load(ordering: .acquiring) }

    /// Calls `handler` synchronously for every change from now on.
    public func subscribe(_ handler: @escaping @Sendable (StoreChange) -> Void) {
        subscribers.withLockedValue { $0.append(handler) }
    }

    /// Hands `change` to every subscriber before returning.
    public func deliver(_ change: StoreChange) {
        for handler in subscribers.withLockedValue({ $0 }) { handler(change) }
    }

    /// Marks whether changes of other replicas are arriving; either way caches start empty.
    func setLive(_ isLive: Bool) {
        live.store(isLive, ordering: .releasing)
        deliver(.everything)
    }
}

extension StoreChange {
    /// `projects:ID`, `activity:ID`, `user:ID` or `everything`: the text carried by a notification.
    var wireFormat: String {
        switch self {
        case .projects(let ownerID): "projects:\(ownerID)"
        case .activity(let ownerID): "activity:\(ownerID)"
        case .user(let id): "user:\(id)"
        case .everything: "everything"
        case .message(let topic, let payload): "message:\(topic):\(payload)"
        }
    }

    init?(wireFormat: Substring) {
        if wireFormat.hasPrefix("message:") {
            let parts = wireFormat.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            self = .message(topic: String(parts[1]), payload: String(parts[2]))
            return
        }
        let parts = wireFormat.split(separator: ":", maxSplits: 1)
        switch (parts.first, parts.count) {
        case ("projects", 2): self = .projects(ownerID: String(parts[1]))
        case ("activity", 2): self = .activity(ownerID: String(parts[1]))
        case ("user", 2): self = .user(id: String(parts[1]))
        case ("everything", 1): self = .everything
        default: return nil
        }
    }
}
