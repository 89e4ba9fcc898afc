import CAllocator
import Logging
import ServiceLifecycle

/// Gives the system back the memory the C allocator keeps after a peak.
///
/// glibc's malloc returns freed memory to the system only from the top of an arena, so after a
/// peak of connections (a thousand WebSockets through the gateway, thousands of chat sockets)
/// the chunks freed between live ones stay in the hub's RSS: bench/gateway measured 70 MiB
/// after 1,000 tunnels had closed against 45 MiB before they opened, and `malloc_trim` brought
/// it back to 50. Every `interval` this reads how much the allocator holds free and trims when
/// that has grown by `threshold` since it was lowest. Both calls lock each arena for a moment,
/// which is why this runs on a timer and not as connections close.
///
/// It also takes that over from glibc (`envhub_allocator_keep_freed_memory`, when it starts):
/// glibc's own trimming handed memory back as soon as a stream's buffers were freed, only to
/// fault it in again for the next read, which cost streams through the gateway a tenth to a
/// third of their CPU (bench/README, "eleventh session").
struct MemoryTrimmer: Service {
    var interval: Duration = .seconds(5)
    var threshold = 16 << 20
    /// The allocator's free bytes, and its trim (true when memory went back).
    var freeBytes: @Sendable () -> Int = { Int(envhub_allocator_free_bytes()) }
    var trim: @Sendable () -> Bool = { envhub_allocator_trim() == 1 }
    let logger: Logger

    func run() async throws {
        envhub_allocator_keep_freed_memory()
        var lowestFree = freeBytes()
        while true {
            // A graceful shutdown or cancellation interrupts the wait and ends the loop quietly.
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: interval) })) != nil else { return }
            lowestFree = trimIfDue(lowestFree: lowestFree)
        }
    }

    /// Trims when the allocator holds at least `threshold` more free bytes than `lowestFree`,
    /// the least it held free since the last trim. (Trimming returns pages but leaves them
    /// counted as free, so the count after a trim is the new low: without it, memory that
    /// cannot go back would be trimmed again every round.) Returns the new low.
    func trimIfDue(lowestFree: Int) -> Int {
        let free = freeBytes()
        guard free - threshold >= lowestFree else { return min(lowestFree, free) }
        let returned = trim()
        logger.debug("trimmed the allocator", metadata: ["free_bytes": "\(free)", "returned": "\(returned)"])
        return freeBytes()
    }
}
