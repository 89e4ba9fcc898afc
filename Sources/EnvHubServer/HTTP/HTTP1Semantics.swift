import EnvHubCore
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
///   before sending any body over 1 KiB. A body longer than any route takes is refused instead
///   (413), before the client sends it. Gateway requests (`/u/…`) keep their `Expect`: the app
///   answers it and its 100 is relayed. Only when no earlier answer on the connection is still
///   going out (a 1xx inside another answer would corrupt it); a client that pipelines such
///   requests waits out its own timer instead.
/// - A request asking to switch protocols (`Connection: upgrade` with `Upgrade`, or CONNECT)
///   that is answered without 101 (a WebSocket the hub refuses: 401, 404, 503) ends the
///   connection after the answer, which says `Connection: close`: NIO's parser reads nothing
///   more of a connection after such a request, so a client that sent another on it would
///   wait for an answer until the idle timeout.
/// - A request that breaks HTTP/1.1's syntax gets a JSON error, not a bare 400 or a silent
///   close (`MalformedRequest`): a head that NIO's parser could not read, or one RFC 9112 has
///   a server refuse that the parser lets through (no Host, two Hosts, a body whose length
///   cannot be known). It is answered in turn, once every answer before it has ended, and
///   the connection closes after it; nothing more is read of it. An error inside a body
///   already passed on goes on to whoever reads the body (`ErrorMiddleware` answers it).
final class HTTP1Semantics: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the answer to a request depends on: whether it came in HTTP/1.0, and whether NIO's
    /// parser stopped after it (it asked to switch protocols).
    private struct Request {
        var isHTTP10: Bool
        var stopsParser: Bool
    }

    /// The requests whose final answer has not started.
    private var requests = CircularBuffer<Request>(initialCapacity: 4)
    /// Requests whose answer has not ended.
    private var answersOwed = 0
    /// The answer going out ends the connection (a switch of protocols refused).
    private var closeAfterAnswer = false
    /// A request head went on and its end has not been read yet.
    private var readingRequest = false
    /// The answer to a malformed request, sent once no answer is owed; the connection ends with it.
    private var refusal: EnvHubError?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refusal == nil else { return }
        let head: HTTPRequestHead
        switch unwrapInboundIn(data) {
        case .head(let read): head = read
        case .body: return context.fireChannelRead(data)
        case .end:
            readingRequest = false
            return context.fireChannelRead(data)
        }
        if let error = MalformedRequest.error(in: head) ?? Self.refusalInsteadOfContinue(head) {
            return refuse(error, context: context)
        }
        readingRequest = true
        pass(head, data, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !readingRequest else { return context.fireErrorCaught(error) }
        if refusal == nil { refuse(MalformedRequest.error(for: parserError), context: context) }
    }

    private func pass(_ head: HTTPRequestHead, _ data: NIOAny, context: ChannelHandlerContext) {
        var head = head
        let isHTTP10 = head.version == .http1_0
        let stopsParser = head.method == .CONNECT || (!head.headers["upgrade"].isEmpty
            && head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" })
        requests.append(Request(isHTTP10: isHTTP10, stopsParser: stopsParser))
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
            guard let request = requests.first else { break }
            let isFinal = head.status.code >= 200 || head.status == .switchingProtocols
            if isFinal { requests.removeFirst() }
            let refusesSwitch = isFinal && request.stopsParser && head.status != .switchingProtocols
            guard request.isHTTP10 || refusesSwitch else { break }
            guard isFinal else {  // an app's 1xx: never to an HTTP/1.0 client (RFC 9110 §15.2)
                promise?.succeed()
                return
            }
            if request.isHTTP10 { head.version = .http1_0 }
            if refusesSwitch { closeAfterAnswer = true }
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterAnswer:
            answersOwed = max(0, answersOwed - 1)
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
            return
        case .end:
            answersOwed = max(0, answersOwed - 1)
            if answersOwed == 0, refusal != nil {
                context.write(data, promise: promise)
                return sendRefusal(context: context)
            }
        case .body:
            break
        }
        context.write(data, promise: promise)
    }

    /// A request for the hub's own routes that waits for 100 Continue before sending a body
    /// larger than any route takes is answered 413 at once instead, and spared the upload.
    /// (One that sends its body without waiting has it read up to the limit by its route,
    /// which then answers 413: refusing before would close the connection on a body still
    /// arriving, and the client could lose the answer to the reset.)
    private static func refusalInsteadOfContinue(_ head: HTTPRequestHead) -> EnvHubError? {
        guard head.version != .http1_0, !Gateway.claims(path: head.uri),
              let length = head.headers.first(name: "content-length").flatMap({ Int($0) }), length > HubRequestContext.bodyLimit,
              head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
        else { return nil }
        return .bodyTooLarge
    }

    /// Answers a malformed request with `error` once no earlier answer is owed, and reads no more.
    private func refuse(_ error: EnvHubError, context: ChannelHandlerContext) {
        refusal = error
        if answersOwed == 0 { sendRefusal(context: context) }
    }

    private func sendRefusal(context: ChannelHandlerContext) {
        guard let refusal else { return }
        let answer = FixedAnswer(refusal)
        var headers = HTTPHeaders(answer.headers.map { ($0.name.rawName, $0.value) })
        headers.add(name: "Content-Length", value: String(answer.body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: refusal.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(answer.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP1Semantics: Sendable {}
