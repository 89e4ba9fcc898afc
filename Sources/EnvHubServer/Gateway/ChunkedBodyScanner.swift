/// Follows a chunked body (RFC 9112 §7.1) as it passes through unchanged, to find where it
/// ends: the gateway's byte path must know where one response ends to reuse the app's
/// connection and to let the client's next request go. Strict: a malformed size line or
/// missing CRLF is an error, never a guess.
struct ChunkedBodyScanner {
    private enum State {
        case size(digits: Int)
        case extensions
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerStart
        case trailerLine
        case trailerLF
        case finalLF
        case done
    }

    private var state = State.size(digits: 0)
    private var size = 0

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
                } else if digits > 0, byte == HeadBytes.cr {
                    state = .sizeLF
                } else if digits > 0, byte == UInt8(ascii: ";") || byte == HeadBytes.space || byte == HeadBytes.tab {
                    state = .extensions
                } else {
                    return .malformed
                }
            case .extensions:
                if byte == HeadBytes.cr {
                    state = .sizeLF
                } else if !HeadBytes.isValueByte(byte, allowObsText: true) {  // a bare LF, another control byte
                    return .malformed
                }
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
                state = byte == HeadBytes.cr ? .finalLF : .trailerLine
                if byte == HeadBytes.lf { return .malformed }
            case .trailerLine:
                if byte == HeadBytes.cr {
                    state = .trailerLF
                } else if byte == HeadBytes.lf {
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

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
