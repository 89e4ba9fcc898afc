/// At most `limit` environments start at once; the rest wait in the order they came.
actor StartSlots {
    private let limit: Int
    private var inUse = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(1, limit) }

    /// Runs `body` with a slot; `onQueued` hears how many are ahead when it has to wait.
    func withSlot<T: Sendable>(onQueued: @Sendable (Int) -> Void = { _ in }, _ body: @Sendable () async throws -> T) async rethrows -> T {
        if inUse < limit {
            inUse += 1
        } else {
            onQueued(waiting.count + 1)
            await withCheckedContinuation { waiting.append($0) }
        }
        defer { release() }
        return try await body()
    }

    private func release() {
        if waiting.isEmpty {
            inUse -= 1
        } else {
            waiting.removeFirst().resume()  // the slot passes on; inUse stays
        }
    }
}
