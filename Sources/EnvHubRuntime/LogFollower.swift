import Foundation

/// Reads what the components of an environment write to their logs after it was created,
/// line by line, prefixed with the component's name. A log that shrinks (a new run of the
/// component truncated it) is read again from its start.
public struct LogFollower {
    let directory: URL
    private var offsets: [String: UInt64] = [:]
    private var partial: [String: String] = [:]

    public init(directory: URL) {
        self.directory = directory
        for file in logFiles() { offsets[file] = size(of: file) }
    }

    public mutating func newLines() -> [String] {
        var lines: [String] = []
        for file in logFiles() {
            let size = size(of: file)
            var offset = offsets[file] ?? 0
            if size < offset { offset = 0 }
            guard size > offset, let handle = try? FileHandle(forReadingFrom: directory.appendingPathComponent(file)) else { continue }
            defer { try? handle.close() }
            try? handle.seek(toOffset: offset)
            let data = (try? handle.read(upToCount: Int(min(size - offset, 1 << 20)))) ?? Data()
            offsets[file] = offset + UInt64(data.count)
            let text = (partial[file] ?? "") + String(decoding: data, as: UTF8.self)
            var pieces = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            partial[file] = pieces.removeLast()
            let component = file.dropLast(4)
            lines += pieces.map { "[\(component)] \($0)" }
        }
        return lines
    }

    private func logFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
    }

    private func size(of file: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(file).path))?[.size] as? NSNumber)?
            .uint64Value ?? 0
    }
}
