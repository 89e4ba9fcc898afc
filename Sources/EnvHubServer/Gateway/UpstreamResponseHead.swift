import NIOCore

/// An app's response head as the gateway's byte path reads it (RFC 9112 §6.3 for where the
/// body ends), with the head the client is sent instead: the same status and fields, without
/// hop-by-hop ones, `Location` and `Set-Cookie` adjusted as `ForwardedHeaders.response` does.
/// The body itself passes on unchanged, chunked or not.
struct UpstreamResponseHead {
    enum Framing: Equatable {
        /// No body: a HEAD request's answer, 1xx, 204, 304.
        case noBody
        case length(Int)
        case chunked
        /// Until the app closes the connection (HTTP/1.0 style); the client's connection closes too.
        case untilClose

        var length: Int? {
            if case .length(let length) = self { return length }
            return nil
        }
    }

    let status: Int
    let headLength: Int
    let framing: Framing
    /// The app's connection may carry another request afterwards.
    let reusable: Bool
    /// The head for the client. When it is the app's, byte for byte (`asItCame`), a slice of
    /// the bytes read; else written anew, with room after it for a body of a known length up to
    /// `roomForBody` (`ByteExchange` then writes both at once, taking the buffer out of here:
    /// a second reference would make that write copy it).
    var clientHead: ByteBuffer
    /// Nothing in the app's head needed changing for the client: `ByteExchange` passes the
    /// bytes read on as they are, head and body in one write, without copying them.
    let asItCame: Bool

    static let roomForBody = 4096

    var isInformational: Bool { status < 200 }

    enum Scan {
        case incomplete
        case head(UpstreamResponseHead)
        case malformed
    }

    /// Heads longer than this are refused (502), as NIO's client codec would.
    static let maxHeadLength = 64 * 1024

    /// Reads the head at the start of `buffer`. `target` supplies the rewriting rules;
    /// `headRequest` (a HEAD: no body follows) and `closeClient` (the client asked to close)
    /// decide framing and the client's Connection field.
    static func scan(_ buffer: ByteBuffer, for target: ProxyTarget, headRequest: Bool, closeClient: Bool) -> Scan {
        buffer.withUnsafeReadableBytes { bytes in
            switch HeadBytes.headEnd(bytes, limit: maxHeadLength) {
            case .notYet: return .incomplete
            case .never: return .malformed
            case .at(let length):
                guard var head = parse(bytes, headLength: length, target: target, headRequest: headRequest, closeClient: closeClient)
                else { return .malformed }
                if head.asItCame { head.clientHead = buffer.getSlice(at: buffer.readerIndex, length: length)! }
                return .head(head)
            }
        }
    }

    private static func parse(
        _ bytes: UnsafeRawBufferPointer, headLength: Int, target: ProxyTarget, headRequest: Bool, closeClient: Bool
    ) -> UpstreamResponseHead? {
        // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF (the reason may be empty).
        guard headLength > 14, HeadBytes.has(bytes, "HTTP/1.", at: 0) else { return nil }
        let minor = bytes[7]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1"), bytes[8] == HeadBytes.space,
              let status = HeadBytes.decimal(bytes, 9..<12), status >= 100, status <= 999,
              bytes[12] == HeadBytes.space || bytes[12] == HeadBytes.cr
        else { return nil }
        var index = 12
        while index < headLength, bytes[index] != HeadBytes.cr {
            guard HeadBytes.isValueByte(bytes[index], allowObsText: true) else { return nil }
            index += 1
        }
        guard bytes[index + 1] == HeadBytes.lf else { return nil }
        let reason = 12..<index
        guard let lines = HeadBytes.fields(bytes, from: index + 2, to: headLength, allowObsText: true) else { return nil }

        // The Connection field's options, and the framing fields.
        var connectionOptions: Set<String> = []
        var contentLength: Int?
        var transferEncoding: HeadBytes.Field?
        for line in lines {
            if HeadBytes.equals(bytes, line.name, "connection") {
                ForwardedHeaders.addConnectionOptions(of: HeadBytes.string(bytes, line.value), to: &connectionOptions)
            } else if HeadBytes.equals(bytes, line.name, "content-length") {
                guard contentLength == nil, let length = HeadBytes.contentLength(bytes, line) else { return nil }
                contentLength = length
            } else if HeadBytes.equals(bytes, line.name, "transfer-encoding") {
                guard transferEncoding == nil else { return nil }
                transferEncoding = line
            }
        }
        let framing: Framing
        if headRequest || status < 200 || status == 204 || status == 304 {
            framing = .noBody
        } else if let transferEncoding {
            guard contentLength == nil else { return nil }  // both: a message to refuse, not to guess at
            guard HeadBytes.endsInChunked(bytes, transferEncoding) else { return nil }  // refused, as nginx does
            framing = .chunked
        } else if let contentLength {
            framing = .length(contentLength)
        } else {
            framing = .untilClose
        }
        if status == 101 { return nil }  // the byte path never asks for an upgrade
        let reusable = minor == UInt8(ascii: "1") && !connectionOptions.contains("close") && framing != .untilClose
            && !ForwardedHeaders.announcesForbiddenBody(
                status: status, contentLength: contentLength, transferEncoding: transferEncoding != nil)

        // The client's head is the app's, byte for byte, until a line must change: only then
        // is it written anew, from a copy of the bytes up to that line.
        var rewritten: HeadText?
        func rewriting(from offset: Int) {
            guard rewritten == nil else { return }
            rewritten = HeadText(capacity: headLength + 64)
            rewritten?.append(UnsafeRawBufferPointer(rebasing: bytes[..<offset]))
        }
        if minor != UInt8(ascii: "1") || reason.isEmpty {
            rewriting(from: 0)
            rewritten?.append("HTTP/1.1")
            rewritten?.append(UnsafeRawBufferPointer(rebasing: bytes[8..<12]))
            rewritten?.append(UnsafeRawBufferPointer(rebasing: bytes[reason]))
            if reason.isEmpty { rewritten?.append(" ") }  // status-line = version SP code SP [reason]
            rewritten?.append("\r\n")
        }
        for line in lines {
            let dropped: Bool
            if HeadBytes.equals(bytes, line.name, "transfer-encoding") {
                dropped = framing != .chunked  // a chunked body passes on as it came
            } else if status < 200 || status == 204, HeadBytes.equals(bytes, line.name, "content-length") {
                dropped = true  // RFC 9110 §8.6: none on a 1xx or 204, whatever the app said
            } else {
                dropped = ForwardedHeaders.isHopByHop(UnsafeRawBufferPointer(rebasing: bytes[line.name]))
                    || connectionOptions.contains(where: { HeadBytes.equals(bytes, line.name, $0) })
            }
            if dropped {
                rewriting(from: line.name.lowerBound)
            } else if HeadBytes.equals(bytes, line.name, "location") {
                rewriting(from: line.name.lowerBound)
                rewritten?.appendField("Location", ForwardedHeaders.location(
                    HeadBytes.string(bytes, line.value), prefix: target.prefix, upstream: target.upstreamURL,
                    prefixStripped: target.prefixStripped))
            } else if HeadBytes.equals(bytes, line.name, "set-cookie") {
                rewriting(from: line.name.lowerBound)
                let value = HeadBytes.string(bytes, line.value)
                if ForwardedHeaders.setsSessionCookie(value) { continue }
                rewritten?.appendField("Set-Cookie", target.prefixStripped ? ForwardedHeaders.cookie(value, prefix: target.prefix) : value)
            } else {
                // White space after the value is left out.
                if bytes[line.value.upperBound] != HeadBytes.cr { rewriting(from: line.name.lowerBound) }
                rewritten?.appendLine(line, of: bytes)
            }
        }
        if status >= 200, closeClient || framing == .untilClose {
            rewriting(from: headLength - 2)
            rewritten?.append("Connection: close\r\n")
        }
        rewritten?.append("\r\n")
        let room = framing.length.map { $0 <= roomForBody ? $0 : 0 } ?? 0
        return UpstreamResponseHead(
            status: status, headLength: headLength, framing: framing, reusable: reusable,
            clientHead: rewritten?.buffer(reserving: room) ?? ByteBuffer(), asItCame: rewritten == nil)
    }
}
