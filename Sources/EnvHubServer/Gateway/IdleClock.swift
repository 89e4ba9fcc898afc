import NIOCore

/// The idle clock of one of the gateway's connections: the connection ends when a wait that
/// counts as idleness lasts `timeout`. Activity only moves the wait's start (`restart`, one
/// clock read); one check at a time is scheduled, for when the wait could next be due, so a
/// busy connection costs no timer per read or write.
///
/// A value its owner keeps and asks at each check (`hasRunOut`), then acts on: the owner's
/// hot path touches one stored field, and no closure or weak reference to the owner is kept
/// (an object with a weak reference to it takes the slow path on every retain and release).
/// Used on the owner's event loop only.
struct IdleClock {
    let timeout: TimeAmount
    /// When the wait being timed began.
    private var since = NIODeadline.now()
    private var check: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Starts timing: `check` runs `timeout` from now.
    mutating func start(on eventLoop: any EventLoop, _ check: @escaping () -> Void) {
        since = .now()
        schedule(at: since + timeout, on: eventLoop, check)
    }

    /// A new wait begins now.
    mutating func restart() {
        since = .now()
    }

    /// No more checks.
    mutating func stop() {
        check?.cancel()
        check = nil
    }

    /// For `check` to call: true when the time counts as idleness (`counting`) and the wait
    /// has lasted `timeout` (the owner then ends the connection); otherwise `check` runs again
    /// when the wait could next be due, or a whole timeout from now while the time does not count.
    mutating func hasRunOut(counting: Bool, on eventLoop: any EventLoop, _ check: @escaping () -> Void) -> Bool {
        let due = since + timeout
        if counting, due <= .now() {
            self.check = nil
            return true
        }
        schedule(at: counting ? due : .now() + timeout, on: eventLoop, check)
        return false
    }

    private mutating func schedule(at deadline: NIODeadline, on eventLoop: any EventLoop, _ check: @escaping () -> Void) {
        self.check = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, check)
    }
}
