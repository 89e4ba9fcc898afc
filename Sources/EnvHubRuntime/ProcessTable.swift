import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What Linux says about processes, from `/proc`: whether a recorded process is still the
/// same one (pid and start time), and which processes are in a process group.
public enum ProcessTable {
    public struct Entry: Sendable, Equatable {
        public let pid: Int32
        public let parent: Int32
        public let group: Int32
        /// R, S, D, Z, T, …; Z is a zombie, dead but not yet reaped.
        public let state: Character
        /// Clock ticks after boot: with the pid, names one process for good.
        public let startTime: UInt64

        public var isAlive: Bool { state != "Z" && state != "X" }
    }

    public static func entry(pid: Int32) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // The command name may hold spaces and parentheses; the fields after the last ')' do not.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first,
              let parent = Int32(fields[1]), let group = Int32(fields[2]), let start = UInt64(fields[19]) else { return nil }
        return Entry(pid: pid, parent: parent, group: group, state: state, startTime: start)
    }

    /// True when `pid` is alive and is the process that started at `startTime`.
    public static func isAlive(pid: Int32, startTime: UInt64) -> Bool {
        guard let entry = entry(pid: pid) else { return false }
        return entry.isAlive && entry.startTime == startTime
    }

    /// The living members of a process group.
    public static func members(ofGroup group: Int32) -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap(Int32.init).compactMap(entry(pid:)).filter { $0.group == group && $0.isAlive }
    }

    /// Collects the exit status of `pid` if it is a child of this process that has ended, so
    /// that it does not linger as a zombie.
    public static func reap(_ pid: Int32) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }
}
