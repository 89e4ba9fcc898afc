import Foundation
import NIOCore

/// The API's one JSON encoder: writes any `Encodable` straight into a `ByteBuffer`, keys in
/// declaration order, dates as ISO 8601 in UTC (`2026-11-23T11:30:43Z`), nil optionals
/// omitted. It exists because Foundation's `JSONEncoder` builds a tree first and spent
/// 40 % of the hub's CPU on a 50-project list (see bench/README.md).
enum JSONWriter {
    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let sink = Sink()
        try sink.write(value, codingPath: [])
        return sink.buffer
    }

    /// The bytes being written, shared by every container of one encoding.
    final class Sink {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)

        func write(_ value: some Encodable, codingPath: [any CodingKey]) throws {
            switch value {
            case let string as String: writeString(string)
            case let date as Date: writeDate(date)
            case let bool as Bool: buffer.writeStaticString(bool ? "true" : "false")
            case let int as Int: buffer.writeString(String(int))
            case let int as Int64: buffer.writeString(String(int))
            case let double as Double: try writeDouble(double, codingPath: codingPath)
            default:
                let container = Container(sink: self)
                try value.encode(to: StreamingEncoder(container: container, codingPath: codingPath))
                container.close()
            }
        }

        func writeString(_ string: String) {
            buffer.writeInteger(UInt8(ascii: "\""))
            var start = string.utf8.startIndex
            let utf8 = string.utf8
            var index = start
            while index != utf8.endIndex {
                let byte = utf8[index]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 {
                    buffer.writeString(String(utf8[start..<index])!)
                    switch byte {
                    case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                    case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                    case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                    case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                    case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                    default:
                        let hex = Array("0123456789abcdef".utf8)
                        buffer.writeStaticString("\\u00")
                        buffer.writeInteger(hex[Int(byte >> 4)])
                        buffer.writeInteger(hex[Int(byte & 0xF)])
                    }
                    start = utf8.index(after: index)
                }
                index = utf8.index(after: index)
            }
            buffer.writeString(String(utf8[start..<index])!)
            buffer.writeInteger(UInt8(ascii: "\""))
        }

        func writeDouble(_ double: Double, codingPath: [any CodingKey]) throws {
            guard double.isFinite else {
                throw EncodingError.invalidValue(double, .init(codingPath: codingPath, debugDescription: "JSON has no \(double)"))
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
            buffer.writeInteger(UInt8(ascii: "\""))
            writeDigits(year, 4)
            buffer.writeInteger(UInt8(ascii: "-"))
            writeDigits(month, 2)
            buffer.writeInteger(UInt8(ascii: "-"))
            writeDigits(day, 2)
            buffer.writeInteger(UInt8(ascii: "T"))
            writeDigits(secondOfDay / 3600, 2)
            buffer.writeInteger(UInt8(ascii: ":"))
            writeDigits(secondOfDay % 3600 / 60, 2)
            buffer.writeInteger(UInt8(ascii: ":"))
            writeDigits(secondOfDay % 60, 2)
            buffer.writeStaticString("Z\"")
        }

        private func writeDigits(_ value: Int64, _ width: Int) {
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            var rest = value
            for position in stride(from: width - 1, through: 0, by: -1) {
                digits[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            buffer.writeBytes(digits)
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
