import CAllocator
import Foundation
import Logging
import Testing

@testable import EnvHubServer

@Suite struct MemoryTrimmerTests {
    /// After a peak, the memory freed between blocks still in use goes back to the system.
    @Test func memoryFreedAfterAPeakGoesBackToTheSystem() throws {
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
        let atPeak = try Self.residentBytes()
        let freeBefore = Int(envhub_allocator_free_bytes())
        for (index, block) in blocks.enumerated() where index % 16 != 0 { block.deallocate() }
        let freed = 15 * 128 * blockSize
        #expect(Int(envhub_allocator_free_bytes()) - freeBefore >= freed * 9 / 10)

        let trimmer = MemoryTrimmer(logger: Logger(label: "test"))
        // Not due: the allocator holds no more free than the low it is told of.
        #expect(trimmer.trimIfDue(lowestFree: Int.max) < Int.max)
        // Due: the low is from before the peak.
        let afterFree = try Self.residentBytes()
        let low = trimmer.trimIfDue(lowestFree: freeBefore)
        let afterTrim = try Self.residentBytes()
        #expect(
            atPeak - afterTrim >= freed / 2,
            "RSS at the peak \(atPeak), once freed \(afterFree), after the trim \(afterTrim); free before \(freeBefore), low \(low)")
        // The trimmed pages stay counted as free: the next round does not trim again.
        #expect(low >= freeBefore + freed * 9 / 10)
    }

    static func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let pages = try #require(Int(statm.split(separator: " ")[1]))
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
