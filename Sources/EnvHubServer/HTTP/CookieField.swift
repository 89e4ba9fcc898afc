/// The pairs of a Cookie field: `name=value` separated by `;` (RFC 6265 §4.2.1), with the
/// spaces and tabs around pairs, names and values not part of them, and a pair without `=`
/// read as a value with an empty name, as browsers do (RFC 6265bis §5.6). One reading for both
/// places that look for the hub's session cookie: finding the session (`AuthenticationMiddleware`)
/// and leaving it out of what an app is sent (`ForwardedHeaders`), so that no spelling counts as
/// the session in one and passes to the app in the other.
///
/// Read from the field's UTF-8 bytes (`FieldValue`): every request a browser sends through the
/// gateway carries this field, and splitting it by `Character`s, trimming with Foundation's
/// character sets, cost several times the rest of the request's work.
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
        var utf8 = field  // `withUTF8` is mutating: it makes a bridged string native first
        utf8.withUTF8 { bytes in
            FieldValue.forEachElement(bytes, separator: UInt8(ascii: ";")) { pair in
                var equals = pair.lowerBound
                while equals < pair.upperBound, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                let whole = FieldValue.part(of: field, pair)
                guard equals < pair.upperBound else { return body(Pair(name: "", value: whole, text: whole)) }
                return body(Pair(
                    name: FieldValue.part(of: field, FieldValue.trimmed(pair.lowerBound..<equals, of: bytes)),
                    value: FieldValue.part(of: field, FieldValue.trimmed(equals + 1..<pair.upperBound, of: bytes)),
                    text: whole))
            }
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
}
