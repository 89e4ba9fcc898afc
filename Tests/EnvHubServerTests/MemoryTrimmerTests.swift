import CAllocator
import Foundation
import Logging
import Synchronization
import Testing

@testable import EnvHubServer

@Suite struct MemoryTrimmerTests {
    /// After a peak, the memory freed between blocks still in use goes back to the system.
    @Test func memoryFreedAfterAPeakGoesBackToTheSystem() {
        // 64 MiB in 32 KiB blocks, every 16th kept: what is freed lies between live blocks,
        // where freeing alone gives nothing back (as after a peak of connections). Blocks of
        // several pages, because the allocator may place them in holes between other tests'
        // memory, and a free chunk gives back only the whole pages inside it.
        let blockSize = 32 << 10
        let blocks = (0..<2048).map { _ in
            let block = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 16)
            block.initializeMemory(as: UInt8.self, repeating: 1, count: blockSize)  // resident
            return block
        }
        defer { for (index, block) in blocks.enumerated() where index % 16 == 0 { block.deallocate() } }
        let atPeak = GatewayTests.residentBytes(of: getpid())
        let freeBefore = Int(envhub_allocator_free_bytes())
        for (index, block) in blocks.enumerated() where index % 16 != 0 { block.deallocate() }
        let freed = (blocks.count - blocks.count / 16) * blockSize
        #expect(Int(envhub_allocator_free_bytes()) - freeBefore >= freed * 9 / 10)

        let trimmer = MemoryTrimmer(logger: Logger(label: "test"))
        // Due: the low is from before the peak.
        let afterFree = GatewayTests.residentBytes(of: getpid())
        let low = trimmer.trimIfDue(lowestFree: freeBefore)
        let afterTrim = GatewayTests.residentBytes(of: getpid())
        #expect(
            atPeak - afterTrim >= freed / 2,
            "RSS at the peak \(atPeak), once freed \(afterFree), after the trim \(afterTrim); free before \(freeBefore), low \(low)")
        // The trimmed pages stay counted as free, so the new low includes them: the next round
        // trims only when more is freed.
        #expect(low >= freeBefore + freed * 9 / 10)
    }

    /// Trims once the free memory has grown by the threshold since its low, and not again
    /// until more is freed; a low that connections used up again counts from there.
    @Test func trimsWhenFreeMemoryHasGrownSinceItsLow() {
        let mib = 1 << 20
        let allocator = Mutex((free: 10 * mib, trims: 0))
        let trimmer = MemoryTrimmer(
            freeBytes: { allocator.withLock { $0.free } },
            trim: { allocator.withLock { $0.trims += 1 }; return true },
            logger: Logger(label: "test"))
        var low = 10 * mib
        var trimsAt: [Int] = []
        // Free MiB each round: grows a little, past the threshold, stays, is used up, grows again.
        for (round, free) in [12, 20, 30, 30, 31, 5, 15, 25, 25].enumerated() {
            allocator.withLock { $0.free = free * mib }
            let before = allocator.withLock { $0.trims }
            low = trimmer.trimIfDue(lowestFree: low)
            if allocator.withLock({ $0.trims }) > before { trimsAt.append(round) }
        }
        #expect(trimsAt == [2, 7])
    }
}
