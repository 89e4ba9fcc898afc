import Synchronization

/// Counts the changes that invalidate a cache, and can be read without the cache's lock. A
/// look-up that raced with a change must not store what the change made stale; and what a
/// connection remembers of its last request (`SessionAuthority.Recalled`,
/// `RouteTable.Recalled`) is current for as long as the count has not moved, which costs the
/// next request one atomic read instead of the lock both event loops take. Advanced only
/// under the cache's lock.
final class CacheGeneration: Sendable {
    private let count = Atomic<Int>(0)

    var current: Int { count.load(ordering: .acquiring) }

    func advance() { count.add(1, ordering: .releasing) }
}
