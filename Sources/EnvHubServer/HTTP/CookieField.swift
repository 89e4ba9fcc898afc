/// The pairs of a Cookie field: `name=value` separated by `;` (RFC 6265 §4.2.1), with the
/// spaces and tabs around pairs, names and values not part of them, and a pair without `=`
/// read as a value with an empty name, as browsers do (RFC 6265bis §5.6). One reading for both
/// places that look for the hub's session cookie: finding the session (`AuthenticationMiddleware`)
/// and leaving it out of what an app is sent (`ForwardedHeaders`), so that no spelling counts as
/// the session in one and passes to the app in the other.
///
/// By UTF-8 bytes: every request a browser sends through the gateway carries this field, and
/// splitting it by `Character`s, trimming with Foundation's character sets, cost several times
/// the rest of the request's work.
enum CookieField {
    /// One pair: its name and value, and the pair as sent (trimmed), for passing it on.
    struct Pair {
        let name: Substring
        let value: Substring
        let text: Substring

        /// Whether the pair is named `name` (compared byte for byte).
        func isNamed(_ name: String) -> Bool { self.name.utf8.elementsEqual(name.utf8) }
    }

    /// Hands each non-empty pair of `field` to `body` in order, until `body` returns false.
    static func forEachPair(in field: String, _ body: (Pair) -> Bool) {
        let bytes = field.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
            let pair = trimmed(bytes[start..<end])
            start = end == bytes.endIndex ? end : bytes.index(after: end)
            guard !pair.isEmpty else { continue }
            let read: Pair
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                read = Pair(
                    name: Substring(trimmed(pair[..<equals])), value: Substring(trimmed(pair[pair.index(after: equals)...])),
                    text: Substring(pair))
            } else {
                read = Pair(name: Substring(pair[pair.startIndex..<pair.startIndex]), value: Substring(pair), text: Substring(pair))
            }
            guard body(read) else { return }
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

    private static func trimmed(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes.removeFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        return bytes
    }
}
