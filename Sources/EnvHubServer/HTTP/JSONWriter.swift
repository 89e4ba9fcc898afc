import Foundation
import NIOCore

/// The API's one JSON encoder: writes any `Encodable` straight into a `ByteBuffer`, keys in
/// declaration order, dates as ISO 8601 in UTC (`2026-11-23T11:30:43Z`), nil optionals
/// omitted. Coding paths are not tracked (they cost an allocation per field), so encoding
/// errors carry none. It exists because Foundation's `JSONEncoder` builds a tree first and spent
/// 40 % of the hub's CPU on a 50-project list (see bench/README.md).
enum JSONWriter {
    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let sink = Sink()
        try sink.write(value)
        return sink.buffer
    }

    /// The bytes being written, shared by every container of one encoding.
    final class Sink {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)

        func write(_ value: some Encodable) throws {
            switch value {
            case let string as String: writeString(string)
            case let date as Date: writeDate(date)
            case let bool as Bool: buffer.writeStaticString(bool ? "true" : "false")
            case let int as Int: buffer.writeString(String(int))
            case let int as Int64: buffer.writeString(String(int))
            case let double as Double: try writeDouble(double)
            default:
                let container = Container(sink: self)
                try value.encode(to: StreamingEncoder(container: container))
                container.close()
            }
        }

        func writeString(_ string: String) {
            var string = string
            string.withUTF8 { bytes in
                buffer.writeInteger(UInt8(ascii: "\""))
                var start = 0
                for index in 0..<bytes.count {
                    let byte = bytes[index]
                    guard byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 else { continue }
                    buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
                    writeEscape(byte)
                    start = index + 1
                }
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<bytes.count])))
                buffer.writeInteger(UInt8(ascii: "\""))
            }
        }

        private func writeEscape(_ byte: UInt8) {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            default:
                let hex: StaticString = "0123456789abcdef"
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex.utf8Start[Int(byte >> 4)])
                buffer.writeInteger(hex.utf8Start[Int(byte & 0xF)])
            }
        }

        func writeDouble(_ double: Double) throws {
            guard double.isFinite else {
                throw EncodingError.invalidValue(double, .init(codingPath: [], debugDescription: "JSON has no \(double)"))
            }
            buffer.writeString(double == double.rounded() && abs(double) < 1e15 ? String(Int64(double)) : "\(double)")
        }

        /// ISO 8601 in UTC with whole seconds, by the civil-from-days algorithm (no formatter, no locale).
        func writeDate(_ date: Date) {
            let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
            let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
            let secondOfDay = seconds - days * 86_400
            let shifted = days + 719_468
            let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
            let dayOfEra = shifted - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let monthIndex = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
            let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
            let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 22) { text in
                func put(_ value: Int64, _ width: Int, at offset: Int) {
                    var rest = value
                    for position in stride(from: offset + width - 1, through: offset, by: -1) {
                        text[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                        rest /= 10
                    }
                }
                text[0] = UInt8(ascii: "\"")
                text[5] = UInt8(ascii: "-")
                text[8] = UInt8(ascii: "-")
                text[11] = UInt8(ascii: "T")
                text[14] = UInt8(ascii: ":")
                text[17] = UInt8(ascii: ":")
                text[20] = UInt8(ascii: "Z")
                text[21] = UInt8(ascii: "\"")
                put(year, 4, at: 1)
                put(month, 2, at: 6)
                put(day, 2, at: 9)
                put(secondOfDay / 3600, 2, at: 12)
                put(secondOfDay % 3600 / 60, 2, at: 15)
                put(secondOfDay % 60, 2, at: 18)
                buffer.writeBytes(UnsafeRawBufferPointer(text))
            }
        }
    }

    /// One JSON object or array being written. A container opened inside another is closed
    /// before its parent writes its next element, so nested containers need no explicit end.
    final class Container {
        enum Kind { case none, object, array, single }
        let sink: Sink
        var kind = Kind.none
        var isEmpty = true
        var openChild: Container?

        init(sink: Sink) { self.sink = sink }

        func open(_ newKind: Kind) {
            guard kind == .none else { return }
            kind = newKind
            switch newKind {
            case .object: sink.buffer.writeInteger(UInt8(ascii: "{"))
            case .array: sink.buffer.writeInteger(UInt8(ascii: "["))
            case .single, .none: break
            }
        }

        /// Starts the next element: closes an open child and writes the separator.
        func nextElement() {
            openChild?.close()
            openChild = nil
            if !isEmpty { sink.buffer.writeInteger(UInt8(ascii: ",")) }
            isEmpty = false
        }

        func key(_ key: any CodingKey) {
            nextElement()
            sink.writeString(key.stringValue)
            sink.buffer.writeInteger(UInt8(ascii: ":"))
        }

        func close() {
            openChild?.close()
            openChild = nil
            switch kind {
            case .object: sink.buffer.writeInteger(UInt8(ascii: "}"))
            case .array: sink.buffer.writeInteger(UInt8(ascii: "]"))
            case .none: sink.buffer.writeStaticString("{}")
            case .single: break
            }
            kind = .single  // closed: nothing more is written for it
        }

        /// A container for a nested value written in place (nestedContainer, superEncoder).
        func child() -> Container {
            let child = Container(sink: sink)
            openChild = child
            return child
        }
    }
}
