import Synchronization

/// Counts the changes that invalidate a cache, and can be read without the cache's lock. A
/// look-up that raced with a change must not store what the change made stale; and what a
/// connection remembers of its last request (`Recalled`, through `recall`) is current for as
/// long as the count has not moved, which costs the next request one atomic read instead of
/// the lock both event loops take. Advanced only under the cache's lock.
final class CacheGeneration: Sendable {
    private let count = Atomic<Int>(0)

    var current: Int { count.load(ordering: .acquiring) }

    func advance() { count.add(1, ordering: .releasing) }

    /// The value for `key`: `recalled`'s, without the cache's lock, when it is for `key`, still
    /// `usable`, and nothing changed since; otherwise what `lookUp` finds in the cache (under
    /// its lock, with `current` read there too), which `recalled` then keeps if `usable`.
    func recall<Key: Equatable, Value>(
        _ key: Key, _ recalled: inout Recalled<Key, Value>?, usable: (Value) -> Bool = { _ in true },
        lookUp: () -> (value: Value, generation: Int)?
    ) -> Value? {
        if let known = recalled, known.generation == current, known.key == key, usable(known.value) { return known.value }
        guard let found = lookUp(), usable(found.value) else { return nil }
        recalled = Recalled(key: key, value: found.value, generation: found.generation)
        return found.value
    }
}

/// What a connection keeps of one look-up in a cache counted by a `CacheGeneration`.
struct Recalled<Key: Equatable, Value> {
    fileprivate let key: Key
    fileprivate let value: Value
    fileprivate let generation: Int
}
