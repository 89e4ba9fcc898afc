import NIOCore
import NIOHTTP1

/// HTTP/1.0 clients (ApacheBench, monitoring probes, old scripts) are answered in HTTP/1.0
/// and their connection closes after the answer, as RFC 9112 §9.3 has it for a client that
/// did not ask to keep it; one that did is closed too (a server may always close, and these
/// clients are rare). Sits between NIO's HTTP/1 codec and HTTPTypes' codec, because the
/// version does not get past the latter: the request goes on with `Connection: close`, which
/// Hummingbird and the gateway act on, and without `Expect`, which HTTP/1.0 does not have
/// (RFC 9110 §10.1.1). Its answer leaves as HTTP/1.0 with `Connection: close`: NIO's encoder
/// then frames a body without a length by the connection's end, never chunked, which an
/// HTTP/1.0 client could not read.
final class HTTP10Requests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// For each request whose answer has not started: whether it came in HTTP/1.0.
    private var requests = CircularBuffer<Bool>(initialCapacity: 4)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let isHTTP10 = head.version == .http1_0
        requests.append(isHTTP10)
        guard isHTTP10 else { return context.fireChannelRead(data) }
        head.headers.remove(name: "expect")
        head.headers.replaceOrAdd(name: "connection", value: "close")
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data), let isHTTP10 = requests.first else {
            return context.write(data, promise: promise)
        }
        let isFinal = head.status.code >= 200 || head.status == .switchingProtocols
        if isFinal { requests.removeFirst() }
        guard isHTTP10 else { return context.write(data, promise: promise) }
        guard isFinal else {  // an app's 1xx: never to an HTTP/1.0 client (RFC 9110 §15.2)
            promise?.succeed()
            return
        }
        head.version = .http1_0
        head.headers.replaceOrAdd(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}

@available(*, unavailable)
extension HTTP10Requests: Sendable {}
