import NIOCore
import NIOEmbedded
import Testing

@testable import EnvHubServer

/// The pace at which an event loop's chat sockets are written (`ChatFlusher`), on a loop
/// whose clock the test moves.
@Suite struct ChatFlusherTests {
    final class Socket: ChatFlusher.Target {
        var flushes = 0
        func flushNow() { flushes += 1 }
    }

    @Test func aQuietLoopFlushesAtOnceABusyOneOncePerInterval() {
        let loop = EmbeddedEventLoop()
        let flusher = ChatFlusher(eventLoop: loop, interval: .milliseconds(20))
        let alice = Socket()
        let bob = Socket()

        // Nothing written for a while: out after this turn of the loop, without waiting.
        flusher.flushSoon(alice)
        loop.run()
        #expect(alice.flushes == 1)

        // Written again within the interval: waits for the next round, with what else comes.
        loop.advanceTime(by: .milliseconds(5))
        flusher.flushSoon(alice)
        flusher.flushSoon(bob)
        loop.run()
        #expect(alice.flushes == 1 && bob.flushes == 0)
        loop.advanceTime(by: .milliseconds(14))
        #expect(alice.flushes == 1 && bob.flushes == 0)
        loop.advanceTime(by: .milliseconds(1))  // 20 ms after the first round
        #expect(alice.flushes == 2 && bob.flushes == 1)

        // Still busy: the next round is again one interval after the last.
        flusher.flushSoon(bob)
        loop.advanceTime(by: .milliseconds(19))
        #expect(bob.flushes == 1)
        loop.advanceTime(by: .milliseconds(1))
        #expect(bob.flushes == 2)

        // Quiet again: at once.
        loop.advanceTime(by: .seconds(1))
        flusher.flushSoon(alice)
        loop.run()
        #expect(alice.flushes == 3)
    }

    @Test func aZeroIntervalFlushesAfterEveryTurn() {
        let loop = EmbeddedEventLoop()
        let flusher = ChatFlusher(eventLoop: loop, interval: .zero)
        let alice = Socket()
        for turn in 1...3 {
            flusher.flushSoon(alice)
            loop.run()
            #expect(alice.flushes == turn)
        }
    }
}
