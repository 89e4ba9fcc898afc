import EnvHubRuntime
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The strict reading of HTTP/1.1 heads (RFC 9112) that the gateway's byte path needs: where
/// a head ends, and its field lines. Anything outside the plain grammar (obs-fold, white space
/// before a colon, a bare LF or CR, a control byte in a value) is refused rather than guessed
/// at, since two parsers reading one message differently is how requests are smuggled.
enum HeadBytes {
    /// The length of the head at the start of `bytes` (through its empty line), nil while
    /// the empty line has not arrived.
    private static func headLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let count = bytes.count
        while index + 3 < count {
            // Look at the fourth byte first: most positions are ruled out by it alone.
            let fourth = bytes[index + 3]
            if fourth == lf {
                if bytes[index] == cr, bytes[index + 1] == lf, bytes[index + 2] == cr { return index + 4 }
                index += 1
            } else if fourth == cr {
                index += 1
            } else {
                index += 4
            }
        }
        return nil
    }

    /// Where a head being read ends, as far as the bytes so far show.
    enum HeadEnd {
        /// Its length, through its empty line.
        case at(Int)
        /// Not arrived yet.
        case notYet
        /// It cannot end where the strict grammar wants it to: no empty line within the
        /// limit, or a line already ended by a bare LF. Waiting for more would only keep the
        /// sender waiting for an answer, up to an idle timeout.
        case never
    }

    /// Where the head at the start of `bytes` ends, looking at no more than `limit` bytes.
    static func headEnd(_ bytes: UnsafeRawBufferPointer, limit: Int) -> HeadEnd {
        let head = UnsafeRawBufferPointer(rebasing: bytes.prefix(limit))
        if let length = headLength(head) { return .at(length) }
        return bytes.count >= limit || hasBareLineFeed(head) ? .never : .notYet
    }

    /// Some LF in `bytes` has no CR before it.
    static func hasBareLineFeed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while let found = bytes[index...].firstIndex(of: lf) {
            if found == 0 || bytes[found - 1] != cr { return true }
            index = found + 1
        }
        return false
    }

    /// An HTTP/1.1 request line, as ranges of the head's bytes.
    struct RequestLine {
        var method: Range<Int>
        var target: Range<Int>
        /// Just past its CRLF: where the field lines start.
        var end: Int
    }

    /// The request line of a head of `headLength` bytes: a method token, one space, a target of
    /// visible ASCII, one space, `HTTP/1.1` and CRLF; nil for anything else (HTTP/1.0 included).
    static func requestLine(_ bytes: UnsafeRawBufferPointer, headLength: Int) -> RequestLine? {
        // No bound checks inside the loops: the head ends with CRLF CRLF, which stops both.
        var index = 0
        while isTokenByte(bytes[index]) { index += 1 }
        let methodEnd = index
        guard methodEnd > 0, bytes[index] == space else { return nil }
        index += 1
        let targetStart = index
        while bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        let targetEnd = index
        let version: StaticString = "HTTP/1.1\r\n"
        guard targetEnd > targetStart, bytes[index] == space, index + 1 + version.utf8CodeUnitCount <= headLength,
              has(bytes, version, at: index + 1)
        else { return nil }
        return RequestLine(method: 0..<methodEnd, target: targetStart..<targetEnd, end: index + 1 + version.utf8CodeUnitCount)
    }

    /// One field line, as ranges of the head's bytes.
    struct Field {
        var name: Range<Int>
        var value: Range<Int>
    }

    /// The field lines of a head whose start line ends at `start` (just past its CRLF) and
    /// which ends at `end` (just past the empty line); nil if one is malformed.
    /// `allowObsText`: bytes 0x80–0xFF in values (accepted from apps, not from clients).
    static func fields(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, allowObsText: Bool) -> [Field]? {
        var fields: [Field] = []
        fields.reserveCapacity(16)
        var index = start
        let last = end - 2  // the empty line's CR
        while index < last {
            let nameStart = index
            while index < last, isTokenByte(bytes[index]) { index += 1 }
            guard index > nameStart, index < last, bytes[index] == colon else { return nil }
            let nameEnd = index
            index += 1
            while index < last, bytes[index] == space || bytes[index] == tab { index += 1 }
            let valueStart = index
            // The line ends at the next CR (memchr: most of a head's bytes are values).
            let base = bytes.baseAddress!
            index = memchr(base + index, Int32(cr), last - index).map { UnsafeRawPointer($0) - base } ?? last
            guard index + 1 < end, bytes[index] == cr, bytes[index + 1] == lf else { return nil }
            for byte in UnsafeRawBufferPointer(rebasing: bytes[valueStart..<index]) where !isValueByte(byte, allowObsText: allowObsText) {
                return nil
            }
            var valueEnd = index
            while valueEnd > valueStart, bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
            index += 2
            fields.append(Field(name: nameStart..<nameEnd, value: valueStart..<valueEnd))
        }
        return fields
    }

    /// Whether the bytes in `range` equal `lowercased` (ASCII, case-insensitively).
    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
        equals(bytes, range, UnsafeBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount))
    }

    /// Whether the bytes in `range` equal `lowercased` (ASCII, case-insensitively).
    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: String) -> Bool {
        guard range.count == lowercased.utf8.count else { return false }
        var lowercased = lowercased
        return lowercased.withUTF8 { equals(bytes, range, $0) }
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == lowercased.count else { return false }
        for offset in 0..<range.count where Self.lowercased(bytes[range.lowerBound + offset]) != lowercased[offset] {
            return false
        }
        return true
    }

    /// An ASCII letter in lower case, any other byte as it is. Only A–Z are folded: setting bit
    /// 0x20 of any byte would also make `^` equal `~`.
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether the bytes in `range` contain `text`, byte for byte.
    static func contains(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        let length = text.utf8CodeUnitCount
        guard length > 0 else { return true }
        guard let base = bytes.baseAddress, range.count >= length else { return false }
        // Each place the first byte occurs (memchr), compared whole (memcmp).
        var index = range.lowerBound
        let lastStart = range.upperBound - length
        while index <= lastStart {
            guard let found = memchr(base + index, Int32(text.utf8Start.pointee), lastStart - index + 1) else { return false }
            index = UnsafeRawPointer(found) - base
            if memcmp(base + index, text.utf8Start, length) == 0 { return true }
            index += 1
        }
        return false
    }

    /// Whether `bytes` has `expected` at `index`, byte for byte (only its first `length`
    /// bytes, when given).
    static func has(_ bytes: UnsafeRawBufferPointer, _ expected: StaticString, at index: Int, length: Int? = nil) -> Bool {
        let length = length ?? expected.utf8CodeUnitCount
        guard length > 0 else { return true }
        guard index >= 0, index + length <= bytes.count, let base = bytes.baseAddress else { return false }
        return memcmp(base + index, expected.utf8Start, length) == 0
    }

    static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A Content-Length field's value (`decimal`); nil also when a tab follows it, which
    /// NIO's parser (llhttp) refuses though RFC 9110 would trim it: the byte path frames no
    /// message that the parser reading the rest of the hub's traffic would refuse.
    static func contentLength(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> Int? {
        onlySpacesFollow(bytes, field) ? decimal(bytes, field.value) : nil
    }

    /// Whether a Transfer-Encoding value, as it came (white space after it included), ends in
    /// `chunked` as NIO's parser (llhttp) reads it: its last list element, without the white
    /// space before it and the spaces after it, is `chunked`. An empty last element (`chunked,`)
    /// or a tab after it is another coding to that parser, which frames such an answer by the
    /// connection's end, though RFC 9110 would pass over the first and trim the second. Both
    /// gateway paths refuse such an answer (502), as nginx refuses codings other than chunked.
    static func endsInChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var end = value.count
        while end > 0, value[end - 1] == space { end -= 1 }
        var start = end
        while start > 0, value[start - 1] != comma { start -= 1 }
        while start < end, value[start] == space || value[start] == tab { start += 1 }
        return equals(value, start..<end, "chunked")
    }

    /// `endsInChunked` of a field line's value, white space after it included.
    static func endsInChunked(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> Bool {
        var lineEnd = field.value.upperBound
        while bytes[lineEnd] != cr { lineEnd += 1 }
        return endsInChunked(UnsafeRawBufferPointer(rebasing: bytes[field.value.lowerBound..<lineEnd]))
    }

    /// Whether nothing but spaces stands between the field's value and its line's CR.
    static func onlySpacesFollow(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> Bool {
        var index = field.value.upperBound
        while bytes[index] == space { index += 1 }
        return bytes[index] == cr
    }

    /// A decimal length of at most 15 digits (a petabyte), nil for anything else.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 15 else { return nil }
        var value = 0
        for index in range {
            let digit = bytes[index] &- 0x30
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// field-vchar, SP or HTAB (RFC 9110 §5.5); obs-text (0x80–0xFF) only when allowed.
    static func isValueByte(_ byte: UInt8, allowObsText: Bool) -> Bool {
        byte &- 0x20 < 0x5F || byte == tab || (byte >= 0x80 && allowObsText)
    }

    /// tchar of RFC 9110 §5.6.2. (A switch, not a table: a global table costs a lazy
    /// initialisation check on every call, for every byte of every head.)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
}

extension ByteBuffer {
    /// Reads the first `count` readable bytes, or all of them when there are fewer.
    mutating func readPrefix(upTo count: Int) -> ByteBuffer {
        readSlice(length: Swift.min(count, readableBytes)) ?? ByteBuffer()
    }
}

/// A head being written: its bytes gathered in an array, then copied into a `ByteBuffer` at
/// once. (Writing each piece into a `ByteBuffer` costs more than the bytes themselves: every
/// write checks the buffer's capacity, uniqueness and exclusive access anew.)
struct HeadText {
    private var bytes: [UInt8] = []

    /// `capacity`: the expected length (more may be written).
    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func append(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    /// `HTTP/1.1 code reason` and CRLF.
    mutating func appendStatusLine(_ code: Int, _ reason: String) {
        append("HTTP/1.1 ")
        append(String(code))
        append(" ")
        append(reason)
        append("\r\n")
    }

    /// `name: value` and CRLF.
    mutating func appendField(_ name: String, _ value: String) {
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    /// `Host: host:port` and CRLF. (`Endpoint.description` would build the value as a
    /// string of its own first, allocated when longer than 15 bytes, as cluster names are.)
    mutating func appendHostField(_ endpoint: Endpoint) {
        append("Host: ")
        append(endpoint.host)
        append(":")
        append(String(endpoint.port))
        append("\r\n")
    }

    /// The field line `field` of `head`, as it came, and CRLF.
    mutating func appendLine(_ field: HeadBytes.Field, of head: UnsafeRawBufferPointer) {
        append(UnsafeRawBufferPointer(rebasing: head[field.name.lowerBound..<field.value.upperBound]))
        append("\r\n")
    }

    /// The bytes written, in a buffer of their own with room for `extra` bytes more.
    func buffer(reserving extra: Int = 0) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + extra)
        buffer.writeBytes(bytes)
        return buffer
    }
}
