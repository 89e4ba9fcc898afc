/// Reading the parts of a field value from its UTF-8 bytes in memory: lists (`a, b`, RFC 9110
/// §5.6.1) and Cookie pairs (`a=1; b=2`). The gateway reads such values in nearly every head
/// (Connection, Cookie, Transfer-Encoding); Foundation's `trimmingCharacters` and stepping
/// through `String.UTF8View` indices each cost more than the rest of the head's reading.
enum FieldValue {
    /// The offsets of each non-empty element of `bytes` separated by `separator`, without the
    /// spaces and tabs around it, in order, until `body` returns false.
    static func forEachElement(_ bytes: UnsafeBufferPointer<UInt8>, separator: UInt8, _ body: (Range<Int>) -> Bool) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != separator { end += 1 }
            let element = trimmed(start..<end, of: bytes)
            start = end + 1
            if !element.isEmpty, !body(element) { return }
        }
    }

    /// `range` without the spaces and tabs at its ends.
    static func trimmed(_ range: Range<Int>, of bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    /// The part of `value` at UTF-8 offsets `range` (of ASCII bytes such as separators and
    /// spaces, which always fall between scalars).
    static func part(of value: String, _ range: Range<Int>) -> Substring {
        let utf8 = value.utf8
        return Substring(utf8[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)])
    }

    /// The elements of the comma-separated lists `values` (one per field line), lower-cased:
    /// the options of Connection, the protocols of Upgrade, the codings of Transfer-Encoding.
    static func tokens(_ values: some Sequence<String>) -> [String] {
        var tokens: [String] = []
        for value in values {
            var utf8 = value  // `withUTF8` is mutating: it makes a bridged string native first
            utf8.withUTF8 { bytes in
                forEachElement(bytes, separator: UInt8(ascii: ",")) { element in
                    tokens.append(String(part(of: value, element)).lowercased())
                    return true
                }
            }
        }
        return tokens
    }
}
