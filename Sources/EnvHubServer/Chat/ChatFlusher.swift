import NIOCore

/// Flushes the chat sockets of one event loop in rounds, instead of after every frame.
///
/// A frame written when the last round was at least `interval` ago goes out once the loop has
/// run what is already queued on it: nothing waits. A frame written sooner waits for the next
/// round, `interval` after the last one, together with whatever else piles up for its socket
/// by then, and all of it goes out in one system call. So a quiet hub sends at once, and a
/// busy one (a room with many subscribers and many messages a second) writes each socket at
/// most once per `interval` instead of once per message: most of the hub's cost per delivery
/// is that system call and the wake-up of the reader it causes. (Centrifugo's `write_delay`
/// trades the same way, but always waits; this waits only when the loop is busy.)
///
/// Used only on its loop; one per loop per `ChatHub` (`ChatHub.flusher(for:)`).
final class ChatFlusher {
    /// What a flusher flushes: a chat socket.
    protocol Target: AnyObject {
        func flushNow()
    }

    private let eventLoop: any EventLoop
    private let interval: TimeAmount
    private var waiting: [any Target] = []
    private var scheduled = false
    private var lastRound: NIODeadline?

    init(eventLoop: any EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        self.interval = interval
    }

    /// Flushes `target` in the next round; call on the loop after writing to it.
    func flushSoon(_ target: any Target) {
        waiting.append(target)
        guard !scheduled else { return }
        scheduled = true
        if let lastRound, lastRound + interval > eventLoop.now {
            eventLoop.assumeIsolated().scheduleTask(deadline: lastRound + interval) { self.flushAll() }
        } else {
            eventLoop.assumeIsolated().execute { self.flushAll() }
        }
    }

    private func flushAll() {
        lastRound = eventLoop.now
        let targets = waiting
        waiting.removeAll(keepingCapacity: true)
        scheduled = false
        for target in targets { target.flushNow() }
    }
}

@available(*, unavailable)
extension ChatFlusher: Sendable {}
