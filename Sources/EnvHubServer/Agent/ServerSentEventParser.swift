import NIOCore

/// Reads a `text/event-stream` body as it arrives, by the WHATWG rules: lines end with LF,
/// CRLF or CR; `event`, `data` (several lines joined with LF) and `id` fields; lines starting
/// with `:` are comments; a blank line ends an event, which counts only if it had data.
struct ServerSentEventParser {
    struct Event: Sendable, Equatable {
        var type: String
        var data: String
        var id: String?
    }

    /// A longer line is refused rather than collected without end.
    let maxLineBytes: Int
    private var line: [UInt8] = []
    /// The last chunk ended with CR, so an LF at the start of the next belongs to it.
    private var afterCR = false
    private var type = ""
    private var data: [String] = []
    private var id: String?

    init(maxLineBytes: Int = 8 << 20) { self.maxLineBytes = maxLineBytes }

    struct LineTooLong: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "an event line is longer than \(limit) bytes" }
    }

    /// The events that `chunk` completes.
    mutating func feed(_ chunk: ByteBuffer) throws -> [Event] {
        var events: [Event] = []
        for byte in chunk.readableBytesView {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                afterCR = byte == UInt8(ascii: "\r")
                if let event = endLine() { events.append(event) }
            default:
                guard line.count < maxLineBytes else { throw LineTooLong(limit: maxLineBytes) }
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            defer {
                type = ""
                data = []
            }
            guard !data.isEmpty else { return nil }
            return Event(type: type.isEmpty ? "message" : type, data: data.joined(separator: "\n"), id: id)
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let text = String(decoding: line, as: UTF8.self)
        let name: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            name = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            name = text[...]
            value = ""
        }
        switch name {
        case "event": type = String(value)
        case "data": data.append(String(value))
        case "id" where !value.contains("\0"): id = String(value)
        default: break  // `retry` and unknown fields mean nothing to the hub
        }
        return nil
    }
}
