import HTTPTypes
import NIOCore

/// A request the gateway's byte path serves (`GatewayByteProxy`): an HTTP/1.1 request for
/// `/u/…` with a method NIO's parser knows and one Host, its body framed by one Content-Length
/// or not at all, and no Expect, Transfer-Encoding or Upgrade to WebSocket (an Upgrade to
/// anything else is ignored).
/// Everything else (WebSocket upgrades, chunked uploads, HTTP/1.0, a head these strict rules
/// refuse, any other path) is left to NIO's full parser and the handlers behind it.
struct PlainGatewayRequest {
    /// What `Gateway` decides on.
    let request: Gateway.Request
    /// The head's bytes, through its empty line.
    let bytes: ByteBuffer
    /// Its field lines (offsets in `bytes`).
    let fields: [HeadBytes.Field]
    /// Content-Length as sent, nil without one (no body).
    let contentLength: Int?
    /// The client sent `Connection: close`.
    let closeAfter: Bool
    /// The options the Connection field names, lower-cased (`ForwardedHeaders.addConnectionOptions`).
    let connectionOptions: Set<String>
    /// What its X-Forwarded fields say, believed when the client is a trusted proxy.
    let claims: ForwardedClaims
    /// The values of the Cookie fields: read for the session, then passed on without it.
    let cookies: [String]

    var headLength: Int { bytes.readableBytes }

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
            switch HeadBytes.headEnd(bytes, limit: maxHeadLength) {
            case .notYet: return .incomplete
            case .never: return .other
            case .at(let length): return parse(buffer, bytes, headLength: length).map { .plain($0) } ?? .other
            }
        }
    }

    /// A method token, one space, `/u/`; false as soon as the bytes there show otherwise.
    private static func startsLikeGatewayRequest(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count, HeadBytes.isTokenByte(bytes[index]) { index += 1 }
        guard index < bytes.count else { return index < 16 }
        guard index > 0, bytes[index] == HeadBytes.space else { return false }
        let prefix: StaticString = "/u/"
        return HeadBytes.has(bytes, prefix, at: index + 1, length: min(prefix.utf8CodeUnitCount, bytes.count - index - 1))
    }

    private static func parse(_ buffer: ByteBuffer, _ bytes: UnsafeRawBufferPointer, headLength: Int) -> PlainGatewayRequest? {
        guard let line = HeadBytes.requestLine(bytes, headLength: headLength) else { return nil }
        let method = HeadBytes.string(bytes, line.method)
        guard isKnownToNIO(method), let method = HTTPRequest.Method(method) else { return nil }
        guard let fields = HeadBytes.fields(bytes, from: line.end, to: headLength, allowObsText: false) else { return nil }
        var host: String?
        var contentLength: Int?
        var authorization: String?
        var cookies: [String] = []
        var wantsHTML = false
        var connectionOptions: Set<String> = []
        var claims = ForwardedClaims()
        var browser = CrossOrigin.Claims()
        for field in fields {
            // Compared by their first byte before their whole name: most fields are none of these.
            switch bytes[field.name.lowerBound] | 0x20 {
            case UInt8(ascii: "h") where HeadBytes.equals(bytes, field.name, "host"):
                guard host == nil else { return nil }
                host = HeadBytes.string(bytes, field.value)
            case UInt8(ascii: "c") where HeadBytes.equals(bytes, field.name, "content-length"):
                guard contentLength == nil, let length = HeadBytes.contentLength(bytes, field) else { return nil }
                contentLength = length
            case UInt8(ascii: "c") where HeadBytes.equals(bytes, field.name, "cookie"):
                cookies.append(HeadBytes.string(bytes, field.value))
            case UInt8(ascii: "c") where HeadBytes.equals(bytes, field.name, "connection"):
                ForwardedHeaders.addConnectionOptions(of: HeadBytes.string(bytes, field.value), to: &connectionOptions)
            case UInt8(ascii: "a") where HeadBytes.equals(bytes, field.name, "authorization"):
                if authorization == nil { authorization = HeadBytes.string(bytes, field.value) }
            case UInt8(ascii: "a") where HeadBytes.equals(bytes, field.name, "accept"):
                if Gateway.wantsHTML(accept: bytes, field.value) { wantsHTML = true }
            case UInt8(ascii: "x") where HeadBytes.equals(bytes, field.name, "x-forwarded-for"):
                claims.forwardedFor.append(HeadBytes.string(bytes, field.value))
            case UInt8(ascii: "x") where HeadBytes.equals(bytes, field.name, "x-forwarded-proto"):
                claims.proto.append(HeadBytes.string(bytes, field.value))
            case UInt8(ascii: "x") where HeadBytes.equals(bytes, field.name, "x-forwarded-host"):
                claims.host.append(HeadBytes.string(bytes, field.value))
            case UInt8(ascii: "s") where HeadBytes.equals(bytes, field.name, "sec-fetch-site"):
                if browser.fetchSite == nil { browser.fetchSite = HeadBytes.string(bytes, field.value) }
            case UInt8(ascii: "s") where HeadBytes.equals(bytes, field.name, "sec-fetch-mode"):
                if browser.fetchMode == nil { browser.fetchMode = HeadBytes.string(bytes, field.value) }
            case UInt8(ascii: "s") where HeadBytes.equals(bytes, field.name, "sec-fetch-dest"):
                if browser.fetchDest == nil { browser.fetchDest = HeadBytes.string(bytes, field.value) }
            case UInt8(ascii: "o") where HeadBytes.equals(bytes, field.name, "origin"):
                if browser.origin == nil { browser.origin = HeadBytes.string(bytes, field.value) }
            case UInt8(ascii: "u") where HeadBytes.equals(bytes, field.name, "upgrade"):
                // Another protocol than WebSocket is ignored: the field is not forwarded.
                if WebSocketTunnel.asksForWebSocket(upgrade: HeadBytes.string(bytes, field.value)) { return nil }
            case UInt8(ascii: "t") where HeadBytes.equals(bytes, field.name, "transfer-encoding"),
                 UInt8(ascii: "e") where HeadBytes.equals(bytes, field.name, "expect"):
                return nil
            default:
                continue
            }
        }
        guard let host else { return nil }
        let request = Gateway.Request(
            method: method, target: HeadBytes.string(bytes, line.target), host: host,
            token: AuthenticationMiddleware.token(authorization: authorization, cookies: cookies),
            hasAuthorization: authorization != nil, wantsHTML: wantsHTML,
            isWebSocketUpgrade: false, crossOriginRefusal: CrossOrigin.gatewayRefusal(
                method: method, webSocket: false, hasAuthorization: authorization != nil, claims: browser, host: host))
        return PlainGatewayRequest(
            request: request, bytes: buffer.getSlice(at: buffer.readerIndex, length: headLength)!, fields: fields,
            contentLength: contentLength, closeAfter: connectionOptions.contains("close"), connectionOptions: connectionOptions,
            claims: claims, cookies: cookies)
    }

    /// The methods NIO's parser (llhttp) knows, but CONNECT. A request with another goes to
    /// that parser, which refuses it (400), as it does on a connection it serves for good: a
    /// request fares the same whichever of the two reads it.
    private static func isKnownToNIO(_ method: String) -> Bool {
        switch method {
        case "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
             "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
             "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR", "LINK",
             "UNLINK", "SOURCE", "QUERY":
            true
        default:
            false
        }
    }

    /// The head the app is sent, by `ForwardedHeaders`' rules for requests, its body framed by
    /// the Content-Length read here alone. `clientIP`: the client's address as text.
    func forwardedHead(for target: ProxyTarget, clientIP: String?) -> ByteBuffer {
        var head = HeadText(capacity: bytes.readableBytes + target.path.utf8.count + 160)
        head.append(request.method.rawValue)
        head.append(" ")
        head.append(target.path)
        head.append(" HTTP/1.1\r\n")
        head.appendHostField(target.upstream)
        var cookiesGo = false  // the Cookie fields' fate: the app's cookies follow in one field
        bytes.withUnsafeReadableBytes { bytes in
            for field in fields {
                if HeadBytes.equals(bytes, field.name, "host") || HeadBytes.equals(bytes, field.name, "content-length") { continue }
                let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
                switch ForwardedHeaders.fate(ofRequestField: name, connectionOptions: connectionOptions, keepUpgrade: false) {
                case .forward:
                    head.appendLine(field, of: bytes)
                case .drop:
                    continue
                case .cookie:
                    cookiesGo = true
                }
            }
        }
        var appCookies: [Substring] = []
        for field in cookies where cookiesGo {
            appCookies += ForwardedHeaders.appCookies(field)
        }
        if !appCookies.isEmpty { head.appendField("Cookie", appCookies.joined(separator: "; ")) }
        ForwardedHeaders.forwardedFields(
            clientAddress: clientIP, claims: claims, fromTrustedProxy: target.clientIsTrustedProxy,
            host: request.host, prefix: target.prefix
        ) { name, value in head.appendField(name.rawName, value) }
        if let contentLength { head.appendField("Content-Length", String(contentLength)) }
        head.append("\r\n")
        return head.buffer()
    }
}
