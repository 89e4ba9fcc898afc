import NIOCore
import NIOHTTP1

/// The parts of HTTP/1.x (RFC 9112, RFC 9110 §10.1.1) that HTTPTypes' codec and Hummingbird
/// leave out, handled between NIO's HTTP/1 codec and HTTPTypes' (the request's version does
/// not get past the latter):
///
/// - HTTP/1.0 clients (ApacheBench, monitoring probes, old scripts) are answered in HTTP/1.0
///   and their connection closes after the answer, as RFC 9112 §9.3 has it for a client that
///   did not ask to keep it; one that did is closed too (a server may always close, and these
///   clients are rare). The request goes on with `Connection: close`, which Hummingbird and
///   the gateway act on, and without `Expect`, which HTTP/1.0 does not have. Its answer leaves
///   as HTTP/1.0 with `Connection: close`: NIO's encoder then frames a body without a length
///   by the connection's end, never chunked, which an HTTP/1.0 client could not read. No 1xx
///   goes to an HTTP/1.0 client.
/// - A request that asks to close in any spelling (`Close`, `keep-alive, close`) goes on with
///   `Connection: close`: Hummingbird compares the field with that exact value.
/// - `Expect: 100-continue` on the hub's own routes is answered at once with 100 Continue, as
///   nginx does for what it reads: Hummingbird never sends one, and curl waits a second for it
///   before sending any body over 1 KiB. Gateway requests (`/u/…`) keep their `Expect`: the app
///   answers it and its 100 is relayed. Only when no earlier answer on the connection is still
///   going out (a 1xx inside another answer would corrupt it); a client that pipelines such
///   requests waits out its own timer instead.
final class HTTP1Semantics: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// For each request whose final answer has not started: whether it came in HTTP/1.0.
    private var requests = CircularBuffer<Bool>(initialCapacity: 4)
    /// Requests whose answer has not ended.
    private var answersOwed = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let isHTTP10 = head.version == .http1_0
        requests.append(isHTTP10)
        answersOwed += 1
        var changed = false
        if isHTTP10 {
            head.headers.remove(name: "expect")
            head.headers.replaceOrAdd(name: "connection", value: "close")
            changed = true
        } else if !head.isKeepAlive, case let options = head.headers[canonicalForm: "connection"], options != ["close"],
                  !options.contains(where: { $0.lowercased() == "upgrade" }) {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            changed = true
        }
        if !isHTTP10, answersOwed == 1, !Gateway.claims(path: head.uri),
           head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            head.headers.remove(name: "expect")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            changed = true
        }
        context.fireChannelRead(changed ? wrapInboundOut(.head(head)) : data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            guard let isHTTP10 = requests.first else { break }
            let isFinal = head.status.code >= 200 || head.status == .switchingProtocols
            if isFinal { requests.removeFirst() }
            guard isHTTP10 else { break }
            guard isFinal else {  // an app's 1xx: never to an HTTP/1.0 client (RFC 9110 §15.2)
                promise?.succeed()
                return
            }
            head.version = .http1_0
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            answersOwed = max(0, answersOwed - 1)
        case .body:
            break
        }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension HTTP1Semantics: Sendable {}
