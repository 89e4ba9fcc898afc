import NIOCore

/// The idle clock of one of the gateway's connections: the connection ends when a wait that
/// counts as idleness lasts `timeout`. Activity only moves the wait's start (`restart`, one
/// clock read); one check at a time is scheduled, for when the wait could next be due, so
/// busy connections cost no timer per read or write. A check that finds the time not counting
/// (`counts` false: the connection waits for the app rather than for the peer, say) looks
/// again a whole timeout later.
///
/// Used on its event loop only. Its owner keeps it, passes closures that capture the owner
/// weakly, and stops it when it leaves the pipeline.
final class IdleClock {
    private let timeout: TimeAmount
    private let eventLoop: any EventLoop
    private let counts: () -> Bool
    private let expired: () -> Void
    /// When the wait being timed began.
    private var since = NIODeadline.now()
    private var check: Scheduled<Void>?

    /// Starts the clock: `expired` is called (once) when `counts` has held at a check made
    /// `timeout` or more after the last `restart`.
    init(timeout: TimeAmount, on eventLoop: any EventLoop, counts: @escaping () -> Bool = { true }, expired: @escaping () -> Void) {
        self.timeout = timeout
        self.eventLoop = eventLoop
        self.counts = counts
        self.expired = expired
        schedule(at: since + timeout)
    }

    /// A new wait begins now.
    func restart() {
        since = .now()
    }

    /// No more checks.
    func stop() {
        check?.cancel()
        check = nil
    }

    private func schedule(at deadline: NIODeadline) {
        check = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in self?.fire() }
    }

    private func fire() {
        let counting = counts()
        let due = since + timeout
        if counting, due <= .now() {
            check = nil
            expired()
        } else {
            schedule(at: counting ? due : .now() + timeout)
        }
    }
}

@available(*, unavailable)
extension IdleClock: Sendable {}
