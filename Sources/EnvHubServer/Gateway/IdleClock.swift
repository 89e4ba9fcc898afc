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
    /// How long a wait may last. The owner may change it at a check, before `hasRunOut`
    /// (an app's connection may wait less in the pool than in an exchange).
    var timeout: TimeAmount
    /// The longest time between two checks: a timeout lowered at a check then counts from the
    /// wait's start, not from when the check before it was scheduled.
    private let longestGap: TimeAmount
    /// When the wait being timed began.
    private var since = NIODeadline.now()
    private var check: Scheduled<Void>?

    /// `longestGap`: at most this long between checks (by default `timeout`).
    init(timeout: TimeAmount, checkingAtLeastEvery longestGap: TimeAmount? = nil) {
        self.timeout = timeout
        self.longestGap = min(longestGap ?? timeout, timeout)
    }

    /// Starts timing: `check` runs `timeout` from now, or sooner (`longestGap`).
    mutating func start(on eventLoop: any EventLoop, _ check: @escaping () -> Void) {
        since = .now()
        schedule(at: since + longestGap, on: eventLoop, check)
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
    /// when the wait could next be due, or a whole timeout from now while the time does not
    /// count (in either case `longestGap` from now at the latest).
    mutating func hasRunOut(counting: Bool, on eventLoop: any EventLoop, _ check: @escaping () -> Void) -> Bool {
        let now = NIODeadline.now()
        let due = since + timeout
        if counting, due <= now {
            self.check = nil
            return true
        }
        schedule(at: min(counting ? due : now + timeout, now + longestGap), on: eventLoop, check)
        return false
    }

    private mutating func schedule(at deadline: NIODeadline, on eventLoop: any EventLoop, _ check: @escaping () -> Void) {
        self.check = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, check)
    }
}
