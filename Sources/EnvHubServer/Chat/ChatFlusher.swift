import NIOConcurrencyHelpers
import NIOCore

/// Flushes the chat sockets of one event loop once the loop has run what is already queued
/// on it, instead of after every frame. An idle loop flushes a frame right after the task
/// that wrote it, so nothing waits; a loop that has fallen behind (many messages queued for
/// delivery) writes what piled up for a socket in one system call, and catches up. Used only
/// on its loop.
final class ChatFlusher {
    private let eventLoop: any EventLoop
    private var waiting: [ChatSocket] = []
    private var scheduled = false

    private init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Flushes `socket` soon; call on its loop after writing to it.
    func flushSoon(_ socket: ChatSocket) {
        waiting.append(socket)
        guard !scheduled else { return }
        scheduled = true
        eventLoop.assumeIsolated().execute { self.flushAll() }
    }

    private func flushAll() {
        let sockets = waiting
        waiting.removeAll(keepingCapacity: true)
        scheduled = false
        for socket in sockets { socket.flushNow() }
    }

    private static let flushers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<ChatFlusher>]>([:])

    /// The flusher of `eventLoop`; call on that loop.
    static func of(_ eventLoop: any EventLoop) -> ChatFlusher {
        flushers.withLockedValue { flushers in
            let key = ObjectIdentifier(eventLoop)
            if let flusher = flushers[key] { return flusher.value }
            let flusher = ChatFlusher(eventLoop: eventLoop)
            flushers[key] = NIOLoopBound(flusher, eventLoop: eventLoop)
            return flusher
        }
    }
}

@available(*, unavailable)
extension ChatFlusher: Sendable {}
