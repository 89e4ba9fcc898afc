import HTTPTypes
import NIOCore

/// A request the gateway's byte path serves (`GatewayByteProxy`): an HTTP/1.1 request for
/// `/u/…` with one Host, its body framed by one Content-Length or not at all, and no Upgrade,
/// Expect or Transfer-Encoding. Everything else (WebSocket upgrades, chunked uploads,
/// HTTP/1.0, a head these strict rules refuse, any other path) is left to NIO's full parser
/// and the router, which answer it as they always have.
struct PlainGatewayRequest {
    /// What `Gateway` decides on: as NIO's codec would have made it (Host as the authority).
    let head: HTTPRequest
    /// Bytes of the head, through its empty line.
    let headLength: Int
    /// Content-Length as sent, nil without one (no body).
    let contentLength: Int?
    /// The client sent `Connection: close`.
    let closeAfter: Bool

    /// Heads longer than this go to NIO's parser, which applies the server's limits.
    static let maxHeadLength = 16 * 1024

    enum Scan {
        /// The head has not arrived whole yet.
        case incomplete
        case plain(PlainGatewayRequest)
        /// Not for the byte path (see the type's comment).
        case other
    }

    /// What the request at the start of `buffer` is.
    static func scan(_ buffer: ByteBuffer) -> Scan {
        buffer.withUnsafeReadableBytes { bytes in
            // "/u/" in the target is all the first line needs to show before the rest arrives.
            guard startsLikeGatewayRequest(bytes) else { return .other }
            guard let length = HeadBytes.headLength(UnsafeRawBufferPointer(rebasing: bytes.prefix(maxHeadLength))) else {
                return bytes.count >= maxHeadLength ? .other : .incomplete
            }
            return parse(bytes, headLength: length).map { .plain($0) } ?? .other
        }
    }

    /// A method token, one space, `/u/`; false as soon as the bytes there show otherwise.
    private static func startsLikeGatewayRequest(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count, HeadBytes.isTokenByte(bytes[index]) { index += 1 }
        guard index < bytes.count else { return index < 16 }
        guard index > 0, bytes[index] == HeadBytes.space else { return false }
        for (offset, byte) in "/u/".utf8.enumerated() {
            guard index + 1 + offset < bytes.count else { return true }
            if bytes[index + 1 + offset] != byte { return false }
        }
        return true
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, headLength: Int) -> PlainGatewayRequest? {
        // Request line: method SP target SP HTTP/1.1 CRLF
        var index = 0
        while HeadBytes.isTokenByte(bytes[index]) { index += 1 }
        let methodEnd = index
        index += 1
        let targetStart = index
        while index < headLength, bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        let targetEnd = index
        let version = "HTTP/1.1\r\n"
        guard bytes[index] == HeadBytes.space, index + 1 + version.utf8.count <= headLength else { return nil }
        for (offset, byte) in version.utf8.enumerated() where bytes[index + 1 + offset] != byte { return nil }
        let method = HeadBytes.string(bytes, 0..<methodEnd)
        guard method != "CONNECT", let method = HTTPRequest.Method(method) else { return nil }

        guard let lines = HeadBytes.fields(bytes, from: index + 1 + version.utf8.count, to: headLength, allowObsText: false)
        else { return nil }
        var host: String?
        var contentLength: Int?
        var closeAfter = false
        var fields = HTTPFields()
        fields.reserveCapacity(lines.count)
        for line in lines {
            if HeadBytes.equals(bytes, line.name, "host") {
                guard host == nil else { return nil }
                host = HeadBytes.string(bytes, line.value)
                continue
            }
            if HeadBytes.equals(bytes, line.name, "content-length") {
                guard contentLength == nil, let length = HeadBytes.decimal(bytes, line.value) else { return nil }
                contentLength = length
            } else if HeadBytes.equals(bytes, line.name, "transfer-encoding") || HeadBytes.equals(bytes, line.name, "upgrade")
                || HeadBytes.equals(bytes, line.name, "expect") {
                return nil
            }
            guard let name = HTTPField.Name(HeadBytes.string(bytes, line.name)) else { return nil }
            let value = HeadBytes.string(bytes, line.value)
            if name == .connection, ForwardedHeaders.tokens([value]).contains("close") { closeAfter = true }
            fields.append(HTTPField(name: name, value: value))
        }
        guard let host else { return nil }
        let head = HTTPRequest(
            method: method, scheme: "http", authority: host, path: HeadBytes.string(bytes, targetStart..<targetEnd),
            headerFields: fields)
        return PlainGatewayRequest(head: head, headLength: headLength, contentLength: contentLength, closeAfter: closeAfter)
    }
}

extension HTTPRequest {
    /// The head as HTTP/1.1 bytes for the app, its body framed by `contentLength` alone
    /// (whatever Content-Length or Transfer-Encoding the fields still carry is left out).
    func http1Head(contentLength: Int?) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(path ?? "/")
        buffer.writeStaticString(" HTTP/1.1\r\n")
        if let authority { buffer.writeField("Host", authority) }
        for field in headerFields where field.name != .contentLength && field.name != .transferEncoding {
            buffer.writeField(field.name.rawName, field.value)
        }
        if let contentLength { buffer.writeField("Content-Length", String(contentLength)) }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
