import EnvHubCore
import EnvHubRuntime
import HTTPTypes
import Hummingbird
import NIOCore

/// What the gateway does with one request under `/u/`: forward it to the environment, or
/// answer it itself (sign in, 404, a redirect, the stopped page...).
enum GatewayAnswer: Sendable {
    case forward(ProxyTarget)
    case respond(FixedAnswer)
}

/// Where a request goes and how it is sent (the rewritten path; what the forwarded fields say).
struct ProxyTarget: Sendable {
    let upstream: Endpoint
    /// Path and query for the app: under or without the prefix.
    let path: String
    let projectID: String
    /// `/u/alice/web`
    let prefix: String
    let prefixStripped: Bool
    /// The client's Host, for X-Forwarded-Host (unless a trusted proxy names another).
    let clientHost: String?
    let clientAddress: SocketAddress?
    /// The client is one of the hub's trusted proxies: its X-Forwarded fields are believed
    /// (`TrustedProxies`, `ForwardedClaims`).
    let clientIsTrustedProxy: Bool
    /// Connection and Upgrade go on (a WebSocket handshake).
    let keepUpgrade: Bool

    /// `alice/web`, for error messages (made only for them).
    var label: String { String(prefix.dropFirst("/u/".count)) }

    /// The app's own address, as it may appear in its `Location` fields.
    var upstreamURL: String { "http://\(upstream)" }

    /// The client's head as the app is sent it (see `ForwardedHeaders.request`).
    func forwardedHead(_ head: HTTPRequest) -> HTTPRequest {
        var forwarded = head
        forwarded.scheme = nil
        forwarded.path = path
        forwarded.authority = upstream.description
        forwarded.headerFields = ForwardedHeaders.request(
            head.headerFields, host: clientHost, clientAddress: clientAddress?.ipAddress,
            fromTrustedProxy: clientIsTrustedProxy, prefix: prefix, keepUpgrade: keepUpgrade)
        return forwarded
    }

    /// The app's response head as the client sees it (see `ForwardedHeaders.response`).
    func clientResponse(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.headerFields = ForwardedHeaders.response(
            response.headerFields, prefix: prefix, upstream: upstreamURL, prefixStripped: prefixStripped)
        // RFC 9110 §8.6: no Content-Length on a 1xx or 204, whatever the app said.
        if response.status.kind == .informational || response.status == .noContent { response.headerFields[.contentLength] = nil }
        return response
    }
}

/// A whole answer held in memory.
struct FixedAnswer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    init(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(_ error: EnvHubError) {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfterSeconds = error.retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        // Encoding two strings cannot fail; fall back to an empty body rather than crash.
        let body = (try? JSONWriter.encode(ErrorBody(error: .init(code: error.code, message: error.message)))) ?? ByteBuffer()
        self.init(status: .init(code: error.status), headers: headers, body: body)
    }

    var response: Response { Response(status: status, headers: headers, body: .init(byteBuffer: body)) }

    /// The head to send, with the body's length.
    var head: HTTPResponse {
        var fields = headers
        fields[.contentLength] = String(body.readableBytes)
        return HTTPResponse(status: status, headerFields: fields)
    }
}
