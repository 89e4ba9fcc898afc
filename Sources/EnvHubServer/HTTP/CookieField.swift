/// The pairs of a Cookie field: `name=value` separated by `;` (RFC 6265 §4.2.1), with the
/// spaces and tabs around pairs, names and values not part of them, and a pair without `=`
/// read as a value with an empty name, as browsers do (RFC 6265bis §5.6). One reading for both
/// places that look for the hub's session cookie: finding the session (`AuthenticationMiddleware`)
/// and leaving it out of what an app is sent (`ForwardedHeaders`), so that no spelling counts as
/// the session in one and passes to the app in the other.
///
/// Read from the field's UTF-8 bytes in memory: every request a browser sends through the
/// gateway carries this field, and splitting it by `Character`s, trimming with Foundation's
/// character sets, cost several times the rest of the request's work (even stepping through
/// `String.UTF8View` indices costs more than the head's own parsing).
enum CookieField {
    /// One pair: its name and value, and the pair as sent (trimmed), for passing it on.
    struct Pair {
        let name: Substring
        let value: Substring
        let text: Substring

        /// Whether the pair is named `name` (exactly).
        func isNamed(_ name: String) -> Bool { self.name == name }
    }

    /// Hands each non-empty pair of `field` to `body` in order, until `body` returns false.
    static func forEachPair(in field: String, _ body: (Pair) -> Bool) {
        let read: Void? = field.utf8.withContiguousStorageIfAvailable { bytes in forEachPair(in: field, bytes, body) }
        if read == nil {  // a string bridged from elsewhere: once more from a native copy
            var native = field
            native.makeContiguousUTF8()
            forEachPair(in: native, body)
        }
    }

    /// The value of the first pair named `name`.
    static func value(named name: String, in field: String) -> Substring? {
        var found: Substring?
        forEachPair(in: field) { pair in
            guard pair.isNamed(name) else { return true }
            found = pair.value
            return false
        }
        return found
    }

    /// `bytes`: `field`'s UTF-8. Pairs are found by offsets in them, then cut from `field`.
    private static func forEachPair(in field: String, _ bytes: UnsafeBufferPointer<UInt8>, _ body: (Pair) -> Bool) {
        let utf8 = field.utf8
        func text(_ range: Range<Int>) -> Substring {
            // Offsets of ASCII bytes (`;`, `=`, spaces) always fall between scalars.
            Substring(utf8[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)])
        }
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
            let pair = trimmed(start..<end, of: bytes)
            start = end + 1
            guard !pair.isEmpty else { continue }
            var equals = pair.lowerBound
            while equals < pair.upperBound, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
            let whole = text(pair)
            let read = equals < pair.upperBound
                ? Pair(name: text(trimmed(pair.lowerBound..<equals, of: bytes)),
                       value: text(trimmed(equals + 1..<pair.upperBound, of: bytes)), text: whole)
                : Pair(name: "", value: whole, text: whole)
            guard body(read) else { return }
        }
    }

    private static func trimmed(_ range: Range<Int>, of bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }
}
