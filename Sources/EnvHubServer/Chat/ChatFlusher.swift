import NIOCore

/// Flushes the chat sockets of one event loop in rounds, instead of after every frame.
///
/// A frame written while no round is due goes out once the loop has run what is already
/// queued on it: nothing waits. After a round, the next one is due five times as long after
/// the round's start as the round took, but never later than `interval`: frames written
/// meanwhile wait for it, together with whatever else piles up for their socket, and all of
/// it goes out in one system call. So a loop spends at most about a fifth of its time in
/// rounds; a round of a few sockets is due again within a millisecond or two, and only a
/// loop that writes to hundreds of sockets many times a second (a busy room) waits up to
/// `interval`, writing each socket once per round instead of once per message: most of the
/// hub's cost per delivery is that system call and the wake-up of the reader it causes.
/// (Centrifugo's `write_delay` trades the same way, but always waits.)
///
/// Used only on its loop; one per loop per `ChatHub` (`ChatHub.flusher(for:)`).
final class ChatFlusher {
    /// What a flusher flushes: a chat socket.
    protocol Target: AnyObject {
        func flushNow()
    }

    /// A round's cost, times this, is how long after its start the next one is due.
    static let roundSpacing: Int64 = 5

    private let eventLoop: any EventLoop
    private let interval: TimeAmount
    private var waiting: [any Target] = []
    private var scheduled = false
    /// When the next round may start; nil: at once.
    private var nextRound: NIODeadline?

    init(eventLoop: any EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        self.interval = interval
    }

    /// Flushes `target` in the next round; call on the loop after writing to it.
    func flushSoon(_ target: any Target) {
        waiting.append(target)
        guard !scheduled else { return }
        scheduled = true
        if let nextRound, nextRound > eventLoop.now {
            eventLoop.assumeIsolated().scheduleTask(deadline: nextRound) { self.flushAll() }
        } else {
            eventLoop.assumeIsolated().execute { self.flushAll() }
        }
    }

    private func flushAll() {
        let start = eventLoop.now
        let began = NIODeadline.now()  // the real clock: what the round costs
        let targets = waiting
        waiting.removeAll(keepingCapacity: true)
        scheduled = false
        for target in targets { target.flushNow() }
        let took = NIODeadline.now() - began
        nextRound = start + min(interval, took * Self.roundSpacing)
    }
}

@available(*, unavailable)
extension ChatFlusher: Sendable {}
