/// Follows a chunked body (RFC 9112 §7.1) as it passes through unchanged, to find where it
/// ends: the gateway's byte path must know where one response ends to reuse the app's
/// connection and to let the client's next request go. Strict: a malformed size line,
/// extension or trailer line, or a missing CRLF, is an error, never a guess. It is no more
/// lenient than NIO's parser (llhttp), which reads the same bodies on the gateway's other path
/// and in clients built on it: no white space around sizes and extensions, extensions as
/// `;name[=token|"quoted"]`, trailer lines as field lines, and no framing field among them.
struct ChunkedBodyScanner {
    private enum State {
        case size(digits: Int)
        /// After `;`: a name, then `;`, `=` or the line's end.
        case extensionName(empty: Bool)
        /// After `=`: a token, a quoted string or the line's end.
        case extensionValue
        case extensionToken
        case quoted
        case quotedPair
        case quotedEnd
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line or of the empty line that ends the body.
        case trailerStart
        case trailerName
        case trailerValue
        case trailerLF
        case finalLF
        case done
    }

    private var state = State.size(digits: 0)
    private var size = 0
    /// The trailer name being read, lower-cased, while it could still be a framing field's.
    private var trailerName: [UInt8] = []

    enum Result: Equatable {
        /// All the bytes belong to the body, which goes on.
        case more
        /// The body ends after this many of the bytes.
        case ends(after: Int)
        case malformed
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Result {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .size(let digits):
                if let value = Self.hexValue(byte) {
                    guard digits < 15 else { return .malformed }
                    size = size << 4 | value
                    state = .size(digits: digits + 1)
                } else if digits > 0, let next = Self.nextOnSizeLine(byte) {
                    state = next
                } else {
                    return .malformed
                }
            case .extensionName(let empty):
                if HeadBytes.isTokenByte(byte) {
                    state = .extensionName(empty: false)
                } else if !empty, byte == Self.equals {
                    state = .extensionValue
                } else if !empty, let next = Self.nextOnSizeLine(byte) {
                    state = next
                } else {
                    return .malformed
                }
            case .extensionValue, .extensionToken:
                if HeadBytes.isTokenByte(byte) {
                    state = .extensionToken
                } else if byte == Self.quote, case .extensionValue = state {
                    state = .quoted
                } else if let next = Self.nextOnSizeLine(byte) {
                    state = next
                } else {
                    return .malformed
                }
            case .quoted:
                if byte == Self.quote {
                    state = .quotedEnd
                } else if byte == Self.backslash {
                    state = .quotedPair
                } else if !HeadBytes.isValueByte(byte, allowObsText: true) {  // qdtext: no control byte
                    return .malformed
                }
            case .quotedPair:
                guard HeadBytes.isValueByte(byte, allowObsText: true) else { return .malformed }
                state = .quoted
            case .quotedEnd:
                guard let next = Self.nextOnSizeLine(byte) else { return .malformed }
                state = next
            case .sizeLF:
                guard byte == HeadBytes.lf else { return .malformed }
                state = size == 0 ? .trailerStart : .data(remaining: size)
                size = 0
            case .data(let remaining):
                // Skip the chunk's data at once rather than byte by byte.
                let taken = min(remaining, bytes.count - index)
                index += taken
                state = taken == remaining ? .dataCR : .data(remaining: remaining - taken)
                continue
            case .dataCR:
                guard byte == HeadBytes.cr else { return .malformed }
                state = .dataLF
            case .dataLF:
                guard byte == HeadBytes.lf else { return .malformed }
                state = .size(digits: 0)
            case .trailerStart:
                if byte == HeadBytes.cr {
                    state = .finalLF
                } else if HeadBytes.isTokenByte(byte) {  // not white space: no obs-fold
                    trailerName = [HeadBytes.lowercased(byte)]
                    state = .trailerName
                } else {
                    return .malformed
                }
            case .trailerName:
                if HeadBytes.isTokenByte(byte) {
                    if trailerName.count <= Self.longestFramingField { trailerName.append(HeadBytes.lowercased(byte)) }
                } else if byte == HeadBytes.colon {
                    // RFC 9110 §6.5.1: framing fields have no place in trailers.
                    guard !Self.framingFields.contains(trailerName) else { return .malformed }
                    state = .trailerValue
                } else {
                    return .malformed
                }
            case .trailerValue:
                if byte == HeadBytes.cr {
                    state = .trailerLF
                } else if !HeadBytes.isValueByte(byte, allowObsText: true) {  // a bare LF, another control byte
                    return .malformed
                }
            case .trailerLF:
                guard byte == HeadBytes.lf else { return .malformed }
                state = .trailerStart
            case .finalLF:
                guard byte == HeadBytes.lf else { return .malformed }
                state = .done
                return .ends(after: index + 1)
            case .done:
                return .ends(after: index)
            }
            index += 1
        }
        return .more
    }

    /// What follows a chunk's size, or an extension's name or value: an extension after `;`,
    /// the line's end at CR; nil for anything else.
    private static func nextOnSizeLine(_ byte: UInt8) -> State? {
        byte == semicolon ? .extensionName(empty: true) : byte == HeadBytes.cr ? .sizeLF : nil
    }

    private static let framingFields = [Array("content-length".utf8), Array("transfer-encoding".utf8)]
    private static let longestFramingField = "transfer-encoding".utf8.count
    private static let semicolon = UInt8(ascii: ";")
    private static let equals = UInt8(ascii: "=")
    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
