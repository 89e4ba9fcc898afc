import EnvHubStore
import NIOConcurrencyHelpers
import NIOCore

/// Encoded `GET /api/users/{user}/projects` answers, by owner id. Entries are dropped on every
/// change the store announces for that owner (on any replica), and the cache is bypassed while
/// the change feed is not live. A `CacheGeneration` keeps a slow reader from storing a list
/// that a write has already replaced.
final class ProjectListCache: Sendable {
    private static let maxEntries = 10_000
    private let bodies = NIOLockedValueBox([String: ByteBuffer]())
    private let generation = CacheGeneration()
    private let feed: ChangeFeed

    init(feed: ChangeFeed) {
        self.feed = feed
        feed.subscribe { [bodies, generation] change in
            bodies.withLockedValue { bodies in
                switch change {
                case .projects(let ownerID), .activity(let ownerID), .user(let ownerID):
                    generation.advance()
                    bodies[ownerID] = nil
                case .everything:
                    generation.advance()
                    bodies.removeAll()
                case .message: break
                }
            }
        }
    }

    /// The cached answer for `ownerID`, or the generation to pass to `store` after reading the store.
    func lookup(ownerID: String) -> (body: ByteBuffer?, generation: Int) {
        guard feed.isLive else { return (nil, -1) }
        return bodies.withLockedValue { ($0[ownerID], generation.current) }
    }

    func store(_ body: ByteBuffer, ownerID: String, generation: Int) {
        bodies.withLockedValue { bodies in
            guard generation == self.generation.current, feed.isLive else { return }
            if bodies.count >= Self.maxEntries { bodies.removeAll() }
            bodies[ownerID] = body
        }
    }
}
