import Foundation
import NIOCore
import NIOEmbedded
import Testing

@testable import EnvHubServer

/// The pace at which an event loop's chat sockets are written (`ChatFlusher`), on a loop
/// whose clock the test moves.
@Suite struct ChatFlusherTests {
    final class Socket: ChatFlusher.Target {
        var flushes = 0
        /// How long a flush of this socket takes (real time), like a write to a socket.
        let cost: useconds_t

        init(cost: useconds_t = 0) { self.cost = cost }

        func flushNow() {
            flushes += 1
            if cost > 0 { usleep(cost) }
        }
    }

    /// A round that took 5 ms makes the next wait at least 25 ms, and never longer than
    /// the interval; what is written meanwhile goes out together.
    @Test func aBusyLoopWaitsFiveTimesWhatARoundTookAtMostTheInterval() {
        let loop = EmbeddedEventLoop()
        let flusher = ChatFlusher(eventLoop: loop, interval: .milliseconds(100))
        let alice = Socket(cost: 5_000)
        let bob = Socket()

        // Nothing written before: out after this turn of the loop, without waiting.
        flusher.flushSoon(alice)
        loop.run()
        #expect(alice.flushes == 1)

        // Written right after: waits for the next round, with what else comes.
        flusher.flushSoon(alice)
        flusher.flushSoon(bob)
        loop.run()
        loop.advanceTime(by: .milliseconds(24))
        #expect(alice.flushes == 1 && bob.flushes == 0)
        loop.advanceTime(by: .milliseconds(76))  // the interval after the first round: due however long it took
        #expect(alice.flushes == 2 && bob.flushes == 1)

        // Quiet for longer than the interval: at once.
        loop.advanceTime(by: .seconds(1))
        flusher.flushSoon(bob)
        loop.run()
        #expect(bob.flushes == 2)
    }

    /// Rounds that cost next to nothing (a few sockets) are due again almost at once, however
    /// long the interval.
    @Test func cheapRoundsHardlyWait() {
        let loop = EmbeddedEventLoop()
        let flusher = ChatFlusher(eventLoop: loop, interval: .seconds(10))
        let alice = Socket()
        flusher.flushSoon(alice)
        loop.run()
        flusher.flushSoon(alice)
        loop.advanceTime(by: .milliseconds(200))  // 5 × a round of one counter increment, with room for a slow machine
        #expect(alice.flushes == 2)
    }

    @Test func aZeroIntervalFlushesAfterEveryTurn() {
        let loop = EmbeddedEventLoop()
        let flusher = ChatFlusher(eventLoop: loop, interval: .zero)
        let alice = Socket(cost: 1_000)
        for turn in 1...3 {
            flusher.flushSoon(alice)
            loop.run()
            #expect(alice.flushes == turn)
        }
    }
}
