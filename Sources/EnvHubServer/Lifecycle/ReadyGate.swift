import NIOConcurrencyHelpers

/// Opens once, when the store is migrated; services that need the schema wait for it. A wait
/// ends early, throwing `CancellationError`, when its task is cancelled: a hub that stops
/// before its store was ever ready (it could not reach the database) must not wait forever.
final class ReadyGate: Sendable {
    private struct State {
        var isOpen = false
        var waiting: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter = 0
    }

    private let state = NIOLockedValueBox(State())

    func wait() async throws {
        let waiter: Int? = state.withLockedValue { state in
            guard !state.isOpen else { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let waiter else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Checked under the lock, so that an open or a cancellation between the two
                // steps is never missed.
                let now: Result<Void, any Error>? = state.withLockedValue { state in
                    if state.isOpen { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiting[waiter] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            state.withLockedValue { $0.waiting.removeValue(forKey: waiter) }?.resume(throwing: CancellationError())
        }
    }

    func open() {
        let waiting = state.withLockedValue { state in
            state.isOpen = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }
}
