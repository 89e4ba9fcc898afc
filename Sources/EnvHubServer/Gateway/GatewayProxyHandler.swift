import EnvHubCore
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Serves the gateway's HTTP requests that NIO's parser has read (those the byte path,
/// `GatewayByteProxy`, lent it, or left to it with the rest of their connection) on the
/// client connection's own event loop, in the connection's pipeline just before Hummingbird's
/// request loop: a request for `/u/…` is decided by `Gateway` (from memory; from the store
/// only on a miss) and then either answered here or forwarded over a pooled
/// `UpstreamConnection` on the same loop, with request and response parts passed on as they
/// come. Nothing waits on a task or crosses threads on the way, which is what makes the
/// gateway as cheap as a dedicated proxy. Every other request (and WebSocket upgrades, which
/// `WebSocketTunnel` relays) goes on to Hummingbird unchanged.
///
/// Order: HTTP/1.1 answers requests in order, so a request for the gateway waits until
/// Hummingbird has answered the ones before it, and a request for Hummingbird waits until
/// the gateway's answer before it is complete. Waiting requests stay unread (back-pressure).
///
/// Back-pressure while forwarding: the app is read only while the client can take more, and
/// the client only while the app can take more.
final class GatewayProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the parts being read belong to.
    private enum Reading {
        /// The next part is a request head.
        case head
        /// A request Hummingbird answers: its parts go on.
        case passing
        /// A request the gateway is deciding about: its parts wait.
        case deciding
        /// A request being forwarded: its parts go to the app once connected.
        case forwarding(Exchange)
        /// A request already answered here: the rest of its body is dropped.
        case discarding
    }

    /// One forwarded request and its response.
    final class Exchange: ForwardedExchange<HTTPRequestPart, HTTPResponsePart> {
        /// The head the app is sent.
        let head: HTTPRequest
        var status = 0

        init(target: ProxyTarget, head: HTTPRequest, activity: ActivityTracker.Shard) {
            self.head = target.forwardedHead(head)
            super.init(target: target, method: head.method, activity: activity)
        }
    }

    let gateway: Gateway
    private var context: ChannelHandlerContext?
    private(set) var pool: UpstreamPool<HTTPRequestPart, HTTPResponsePart>?
    /// Where this connection's exchanges record use: its event loop's shard, once added.
    private var activity: ActivityTracker.Shard
    /// What its last request found in the gateway's caches.
    private var recall = Gateway.Recall()
    private var reading = Reading.head
    /// Parts read and not yet handled, oldest first.
    private var queue = CircularBuffer<HTTPRequestPart>()
    /// Requests passed to Hummingbird whose responses are not complete yet.
    private var hummingbirdResponsesOwed = 0
    /// The gateway's own response in progress.
    var exchange: Exchange?
    /// When the gateway's current request arrived, and its method, for the metrics.
    private var requestStarted = ContinuousClock.now
    private var requestMethod = HTTPRequest.Method.get
    private var timing = GatewayTiming()
    /// The client sent `Connection: close`: close once the current answer is written.
    private var closeAfterAnswer = false
    /// NIO's parser failed in the body of the request being decided, or of one waiting in
    /// `queue` (`errorCaught`).
    private var unreadable: HTTPParserError?
    private var pendingRead = false
    private var firedToHummingbird = false
    private var processing = false
    private var processAgain = false

    init(gateway: Gateway) {
        self.gateway = gateway
        activity = gateway.activity.common
    }

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }
    var eventLoop: (any EventLoop)? { context?.eventLoop }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        activity = gateway.activity.shard(for: context.eventLoop)
        pool = Self.pools.value(on: context.eventLoop) {
            UpstreamPool { pipeline in
                // NIO's `addHTTPClientHandlers` drops the app's 1xx answers; a client that sent
                // `Expect: 100-continue` waits for its 100 Continue before sending the body.
                // (Header validation: HTTPTypes validates.)
                try pipeline.addHandlers([
                    HTTPRequestEncoder(),
                    ByteToMessageHandler(HTTPResponseDecoder(informationalResponseStrategy: .forward)),
                    AnswerCodingCheck(),
                    HTTP1ToHTTPClientCodec(),
                ])
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        abandonExchange()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        process()
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandonExchange()
        context.fireChannelInactive()
    }

    /// NIO's parser failed in the body of a request: nothing more will be read. A gateway
    /// request's client learns why (`MalformedRequest`) unless an answer to the request has
    /// begun, and the connection closes; a request of Hummingbird's gets the error passed on,
    /// to fail its body. (A failure in a head never reaches here: `HTTP1Semantics` answers it.)
    /// A request still waiting behind an earlier answer meets the error in its turn.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            guard exchange != nil else { return context.fireErrorCaught(error) }
            abandonExchange()
            return context.close(promise: nil)
        }
        process()  // what was read before the error first
        switch reading {
        case .head where !queue.isEmpty:
            unreadable = parserError  // `act`, or the end of the queue, meets it
        case .head, .passing:
            context.fireErrorCaught(error)
        case .deciding:
            unreadable = parserError  // `act` answers with it
        case .forwarding(let exchange):
            abandonExchange()
            guard !exchange.responseStarted else { return context.close(promise: nil) }
            refuse(parserError)
        case .discarding:  // the gateway's own answer is out
            context.close(promise: nil)
        }
    }

    /// Answers a request whose body could not be read, and ends the connection.
    private func refuse(_ error: HTTPParserError) {
        closeAfterAnswer = true
        reading = .discarding
        respond(FixedAnswer(MalformedRequest.error(for: error)))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    /// Hummingbird's writes pass through; the end of each of its responses may let a waiting
    /// gateway request go.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data), hummingbirdResponsesOwed > 0 {
            hummingbirdResponsesOwed -= 1
            if hummingbirdResponsesOwed == 0, !queue.isEmpty { process() }
        }
    }

    func read(context: ChannelHandlerContext) {
        if queue.isEmpty { context.read() } else { pendingRead = true }
    }

    // MARK: the request stream

    /// Handles queued parts as far as the current state allows. Re-entered (an answer
    /// finished on the way, a flush that made the app's connection writable again) it asks
    /// the outer call to go round once more.
    func process() {
        guard context != nil else { return }
        if processing {
            processAgain = true
            return
        }
        processing = true
        defer { processing = false }
        repeat {
            processAgain = false
            processQueue()
        } while processAgain
    }

    private func processQueue() {
        guard let context else { return }
        loop: while let part = queue.first {
            switch reading {
            case .head:
                guard case .head(let head) = part else {
                    queue.removeFirst()  // cannot happen with NIO's decoder; never let it wedge the loop
                    continue
                }
                if Gateway.claims(head), !WebSocketTunnel.isWebSocketUpgrade(head) {
                    guard hummingbirdResponsesOwed == 0, exchange == nil else { break loop }
                    queue.removeFirst()
                    begin(head, context: context)
                } else {
                    guard exchange == nil else { break loop }
                    queue.removeFirst()
                    hummingbirdResponsesOwed += 1
                    reading = .passing
                    fireToHummingbird(part, context: context)
                }
            case .passing:
                queue.removeFirst()
                if case .end = part { reading = .head }
                fireToHummingbird(part, context: context)
            case .deciding:
                break loop
            case .forwarding(let exchange):
                guard let upstream = exchange.upstream, upstream.isWritable else { break loop }
                queue.removeFirst()
                if case .body = part { exchange.sentBody = true }
                upstream.send(part)
                exchange.unflushed = true
                if case .end = part {
                    exchange.requestSent = true
                    reading = .head
                }
            case .discarding:
                queue.removeFirst()
                if case .end = part { reading = .head }
            }
        }
        if let exchange, exchange.unflushed {
            exchange.unflushed = false
            exchange.upstream?.flush()
        }
        if case .passing = reading, queue.isEmpty, let unreadable {  // its body's end will not come
            self.unreadable = nil
            context.fireErrorCaught(unreadable)
        }
        if firedToHummingbird {
            firedToHummingbird = false
            context.fireChannelReadComplete()
        }
        if pendingRead, queue.isEmpty {
            pendingRead = false
            context.read()
        }
    }

    private func fireToHummingbird(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(part))
        firedToHummingbird = true
    }

    private func begin(_ head: HTTPRequest, context: ChannelHandlerContext) {
        if ForwardedHeaders.tokens(head.headerFields[values: .connection]).contains("close") { closeAfterAnswer = true }
        requestStarted = .now
        requestMethod = head.method
        let request = Gateway.Request(head), remoteAddress = context.channel.remoteAddress
        if let answer = gateway.cachedAnswer(request, remoteAddress: remoteAddress, recall: &recall) {
            return act(on: answer, for: head)
        }
        reading = .deciding
        decideFromStore(request, remoteAddress: remoteAddress) { answer in self.act(on: answer, for: head) }
    }

    private func act(on answer: GatewayAnswer, for head: HTTPRequest) {
        if let unreadable { return refuse(unreadable) }
        switch answer {
        case .respond(let answer):
            reading = .discarding
            respond(answer)
        case .forward(let target):
            let exchange = Exchange(target: target, head: head, activity: activity)
            self.exchange = exchange
            reading = .forwarding(exchange)
            connect(exchange)
        }
    }

    // MARK: answers of its own

    private func respond(_ answer: FixedAnswer) {
        guard let context else { return }
        context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
        if requestMethod != .head, answer.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
        }
        finishAnswer(context: context, trailers: nil, status: answer.status.code)
    }

    /// Writes the end of the gateway's answer, then lets the next request go (or closes).
    private func finishAnswer(context: ChannelHandlerContext, trailers: HTTPFields?, status: Int) {
        timing.record(.now - requestStarted, method: requestMethod, status: status, in: gateway.metrics)
        guard closeAfterAnswer else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            return process()
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: forwarding

    /// Sends the head (and the end, when a retried request had already ended); the body
    /// follows from the queue.
    func attach(_ connection: Upstream, to exchange: Exchange) {
        exchange.upstream = connection
        connection.owner = self
        connection.send(.head(exchange.head))
        if exchange.requestSent { connection.send(.end(nil)) }
        exchange.unflushed = true
    }

    func answerInstead(_ answer: FixedAnswer, of exchange: Exchange) {
        if case .forwarding = reading { reading = .discarding }
        respond(answer)
    }

    func closeClient() {
        context?.flush()
        context?.close(promise: nil)
    }

    // MARK: what the app's connection reports

    func upstreamRead(_ part: HTTPResponsePart) {
        guard let context, let exchange else { return }
        switch part {
        case .head(let response):  // its Transfer-Encoding ends in chunked, if it has one (`AnswerCodingCheck`)
            if response.status.kind != .informational {
                exchange.responseStarted = true
                // The app closes the connection after this response, or may send what follows
                // it wrongly: it goes back to no pool.
                if ForwardedHeaders.tokens(response.headerFields[values: .connection]).contains("close")
                    || ForwardedHeaders.announcesForbiddenBody(
                        status: response.status.code, contentLength: response.headerFields[.contentLength].flatMap { Int($0) },
                        transferEncoding: response.headerFields[.transferEncoding] != nil) {
                    exchange.upstream?.reusable = false
                }
            }
            exchange.status = response.status.code
            context.write(wrapOutboundOut(.head(exchange.target.clientResponse(response))), promise: nil)
        case .body(let bytes):
            context.write(wrapOutboundOut(.body(bytes)), promise: nil)
        case .end(let trailers):
            self.exchange = nil
            exchange.releaseUpstream(to: pool)
            if case .forwarding = reading { reading = .discarding }  // the app answered before reading everything
            finishAnswer(context: context, trailers: trailers, status: exchange.status)
        }
    }

    /// Flushes the answer in progress; one that ended was flushed with its end (`finishAnswer`).
    func upstreamReadComplete() {
        if exchange != nil { context?.flush() }
    }

    func upstreamBecameWritable() { process() }

    func upstreamEnded(_ connection: AnyObject, error: (any Error)?) {
        guard let exchange, exchange.upstream === connection else { return }
        upstreamFailed(exchange, error: error)
    }
}

extension GatewayProxyHandler: ExchangeForwarder {
    typealias Upstream = UpstreamConnection<HTTPRequestPart, HTTPResponsePart>

    /// The pools of connections to apps, one per event loop.
    private static let pools = EventLoopLocal<UpstreamPool<HTTPRequestPart, HTTPResponsePart>>()
}

@available(*, unavailable)
extension GatewayProxyHandler: Sendable {}
