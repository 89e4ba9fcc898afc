import EnvHubStore
import NIOConcurrencyHelpers
import NIOCore

/// Encoded `GET /api/users/{user}/projects` answers, by owner id. Entries are dropped on every
/// change the store announces for that owner (on any replica), and the cache is bypassed while
/// the change feed is not live. A generation counter keeps a slow reader from storing a list
/// that a write has already replaced.
final class ProjectListCache: Sendable {
    private struct State {
        var bodies: [String: ByteBuffer] = [:]
        var generation = 0
    }

    private static let maxEntries = 10_000
    private let state = NIOLockedValueBox(State())
    private let feed: ChangeFeed

    init(feed: ChangeFeed) {
        self.feed = feed
        feed.subscribe { [state] change in
            state.withLockedValue { state in
                switch change {
                case .projects(let ownerID), .activity(let ownerID), .user(let ownerID):
                    state.generation += 1
                    state.bodies[ownerID] = nil
                case .everything:
                    state.generation += 1
                    state.bodies.removeAll()
                case .message: break
                }
            }
        }
    }

    /// The cached answer for `ownerID`, or the generation to pass to `store` after reading the store.
    func lookup(ownerID: String) -> (body: ByteBuffer?, generation: Int) {
        guard feed.isLive else { return (nil, -1) }
        return state.withLockedValue { ($0.bodies[ownerID], $0.generation) }
    }

    func store(_ body: ByteBuffer, ownerID: String, generation: Int) {
        state.withLockedValue { state in
            guard generation == state.generation, feed.isLive else { return }
            if state.bodies.count >= Self.maxEntries { state.bodies.removeAll() }
            state.bodies[ownerID] = body
        }
    }
}
