import EnvHubCore
import HTTPTypes
import NIOCore
import NIOHTTP1
import Prometheus

/// The gateway's byte path: serves plain gateway requests (`PlainGatewayRequest`) as bytes,
/// at the very front of the connection's pipeline, before NIO's HTTP/1 codec. Only the heads
/// are read (strictly) and rewritten; bodies pass on as they came, chunked or not, in both
/// directions. This is what lets the gateway keep up with a dedicated proxy: the full codec
/// and the HTTPTypes conversions on both sides cost more than everything else a forwarded
/// request needs.
///
/// A request that is not plain (anything for the hub's own pages and API, a chunked upload)
/// goes to NIO's parser and the handlers behind it (gateway requests to `GatewayProxyHandler`),
/// which join the pipeline the first time: this handler gives the parser that request's bytes
/// alone and takes the connection back once it has been answered (`ParserTurn`, which says
/// how the two parsers are kept from reading the stream differently). A browser reaches the
/// hub's pages and the apps over the same few connections, so its app requests stay on the
/// byte path after a dashboard call. A request whose end the byte path does not find as
/// strictly (a WebSocket upgrade, HTTP/1.0, `Connection: close`, ambiguous framing, a head
/// over 16 KiB) ends the byte path for the connection: this handler leaves the pipeline and
/// hands what it has read to NIO's parser, which serves the rest of the connection. Both
/// happen at a request boundary, once the answer in progress is written, so the parser always
/// sees a request from its start.
///
/// Decisions are `Gateway`'s, the same as on the other path; the header rules are
/// `ForwardedHeaders`'. Back-pressure: the client is read only while the app can take more,
/// the app only while the client can.
///
/// Idle clients: while the byte path waits for the client (for the next request, or for the
/// rest of one), a client that sends nothing for `clientIdleTimeout` is disconnected, as
/// `ClientConnectionState` does while the parser serves the connection (each is told when the
/// other serves it: `Turn`). Waiting for the app is not the client's idleness: the gateway's
/// own idle timeout covers that.
final class GatewayByteProxy: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the client's bytes being read belong to.
    private enum Reading {
        /// The next bytes are a request head.
        case head
        /// A request the gateway is deciding about: its body waits.
        case deciding
        /// A request body going to the app once connected.
        case forwarding(ByteExchange)
        /// The rest of a body of a request already answered, dropped.
        case discarding(remaining: Int)
        /// A request lent to NIO's parser (`parserTurn`).
        case lent
    }

    /// Told along the pipeline (an inbound user event) when the connection changes hands
    /// between the byte path and NIO's parser.
    enum Turn {
        case bytePath
        case parser
    }

    let gateway: Gateway
    private let clientIdleTimeout: TimeAmount?
    /// Adds, right behind this handler, NIO's parser and what serves the requests it reads.
    private let joinParser: (ChannelPipeline.SynchronousOperations, GatewayByteProxy) throws -> Void
    /// Behind the parser once it has joined; removed with this handler.
    private var parserWatch: ParserTurnWatch?
    /// The request lent to the parser, while `reading` is `.lent`; what the parser's side
    /// reported of it (`ParserTurnWatch`): the request ends read in the bytes lent last, and
    /// whether the answer has ended.
    private var parserTurn: ParserTurn?
    private var parserRequestEnds = 0
    private var parserAnswerEnded = false
    private var context: ChannelHandlerContext?
    private(set) var pool: UpstreamPool<ByteBuffer, ByteBuffer>?
    /// Where this connection's exchanges record use: its event loop's shard, once added.
    private var activity: ActivityTracker.Shard
    /// What its last request found in the gateway's caches.
    private var recall = Gateway.Recall()
    private var reading = Reading.head
    /// Bytes read from the client and not yet handled.
    private var inbound: ByteBuffer?
    /// The answer in progress (the app's); answers of the gateway's own are written at once.
    var exchange: ByteExchange?
    /// The request being answered: when it arrived, its method, whether the client asked to close.
    private var requestStarted = ContinuousClock.now
    private var requestMethod = HTTPRequest.Method.get
    private var closeAfterAnswer = false
    private var timing = GatewayTiming()
    /// The client's address, and as text (X-Forwarded-For): the same for every request of the
    /// connection, so read once (the channel's copy costs a few reference counts at every read).
    private lazy var remoteAddress = context?.channel.remoteAddress
    private lazy var clientIP = remoteAddress?.ipAddress
    private var handedOver = false
    private var pendingRead = false
    private var processing = false
    private var processAgain = false
    /// Restarted when the client sends something or is given its turn (an answer ended, the
    /// app could take more of a body).
    private var idleClock: IdleClock?

    /// `clientIdleTimeout`: nil, never. `joinParser`: adds NIO's HTTP server handlers and the
    /// ones that serve what it reads, the first time a request goes to them (until then each
    /// would be one more step for every read of the connection).
    init(
        gateway: Gateway, clientIdleTimeout: TimeAmount?,
        joinParser: @escaping (ChannelPipeline.SynchronousOperations, GatewayByteProxy) throws -> Void
    ) {
        self.gateway = gateway
        activity = gateway.activity.common
        self.clientIdleTimeout = clientIdleTimeout
        self.joinParser = joinParser
    }

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }
    var eventLoop: (any EventLoop)? { context?.eventLoop }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        activity = gateway.activity.shard(for: context.eventLoop)
        pool = Self.pools.value(on: context.eventLoop) { UpstreamPool { _ in } }  // bytes as they come
        if let clientIdleTimeout {
            idleClock = IdleClock(timeout: clientIdleTimeout)
            idleClock?.start(on: context.eventLoop, checkIdleClient)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        idleClock?.stop()
        abandonExchange()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !handedOver else { return context.fireChannelRead(data) }
        if !continuesHead { idleClock?.restart() }
        var bytes = unwrapInboundIn(data)
        if let pending = inbound?.readableBytes, pending > 0 {
            inbound?.writeBuffer(&bytes)
        } else {
            inbound = bytes
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !handedOver else { return context.fireChannelReadComplete() }
        process()
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandonExchange()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !handedOver, parserTurn == nil else { return context.fireErrorCaught(error) }
        abandonExchange()
        context.close(promise: nil)
    }

    /// While the byte path serves the connection, the ends of input and graceful shutdown
    /// are its to handle: the handlers behind it have seen no request and would close at once.
    /// Graceful shutdown lets the answer in progress finish. The end of the client's input
    /// ends it: the client has gone (HTTP/1.1 clients do not half-close), so the app's work
    /// would reach no one, and it must not keep the environment in use. (NIO's parser path
    /// ends it too, as nginx, Envoy and Go's reverse proxy do.)
    ///
    /// While the parser has a request, they are the parser's side's (which, at a graceful
    /// shutdown, ends the connection after that answer).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard !handedOver else { return context.fireUserInboundEventTriggered(event) }
        if parserTurn != nil {
            if event is ChannelShouldQuiesceEvent { closeAfterAnswer = true }
            context.fireUserInboundEventTriggered(event)
        } else if event is ChannelShouldQuiesceEvent {
            closeAfterAnswer = true
            if !isAnswering { context.close(promise: nil) }
        } else if (event as? ChannelEvent) == .inputClosed {
            abandonExchange()
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !handedOver, context.channel.isWritable { exchange?.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if handedOver || wantsClientBytes { context.read() } else { pendingRead = true }
    }

    /// What the parser's side reports of the request lent to it (`ParserTurnWatch`).
    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? ParserTurnWatch.Event else { return context.triggerUserOutboundEvent(event, promise: promise) }
        promise?.succeed()
        switch event {
        case .requestEnded:
            parserRequestEnds += 1
        case .answerEnded:
            parserAnswerEnded = true
            // Not from inside the write of the answer's end: the handlers behind are in the
            // middle of it, and the next request may be the parser's again.
            if parserTurnIsOver { context.eventLoop.assumeIsolated().execute { self.endParserTurnIfOver() } }
        }
    }

    /// An answer is on its way: being decided, the app's being relayed, or the parser's side's.
    private var isAnswering: Bool {
        switch reading {
        case .deciding, .lent: return true
        case .head, .forwarding, .discarding: return exchange != nil
        }
    }

    /// The byte path waits for the client's bytes: for a request head, or for more of a body
    /// the app can take now. (Not while deciding, nor while the app is connecting, answering,
    /// or slower than the client.)
    private var waitsForClient: Bool {
        switch reading {
        case .head: return exchange == nil
        case .deciding, .lent: return false
        case .forwarding(let exchange): return (inbound?.readableBytes ?? 0) == 0 && exchange.upstream?.isWritable == true
        case .discarding: return true
        }
    }

    /// Disconnects a client that has kept the byte path waiting for `clientIdleTimeout`.
    private func checkIdleClient() {
        guard let context, !handedOver else { return }
        let waiting = waitsForClient
        guard idleClock?.hasRunOut(counting: waiting, on: context.eventLoop, checkIdleClient) == true else { return }
        abandonExchange()
        context.close(promise: nil)
    }

    /// Bytes read now continue a head whose first bytes came earlier. A head must arrive whole
    /// within the client idle timeout of its first bytes (nginx's `client_header_timeout`), so
    /// these do not restart the clock: a client that trickles a head in (slowloris) cannot
    /// hold the connection. Bodies restart it with every read, as nginx's `client_body_timeout`.
    private var continuesHead: Bool {
        guard case .head = reading, exchange == nil else { return false }
        return (inbound?.readableBytes ?? 0) > 0
    }

    /// Reading on helps: nothing read is waiting, or a head is still incomplete.
    private var wantsClientBytes: Bool {
        if (inbound?.readableBytes ?? 0) == 0 { return true }
        if case .head = reading, exchange == nil { return true }
        return false
    }

    // MARK: the request stream

    /// Handles the bytes read as far as the current state allows. Re-entered (an answer
    /// finished on the way) it asks the outer call to go round once more.
    func process() {
        guard context != nil, !handedOver else { return }
        if processing {
            processAgain = true
            return
        }
        processing = true
        defer { processing = false }
        repeat {
            processAgain = false
            processInbound()
        } while processAgain
    }

    private func processInbound() {
        guard let context else { return }
        loop: while !handedOver, let pending = inbound, pending.readableBytes > 0 {
            switch reading {
            case .head:
                guard exchange == nil, !closeAfterAnswer else { break loop }
                switch PlainGatewayRequest.scan(pending) {
                case .incomplete:
                    break loop
                case .other:
                    switch ParserTurn.scan(pending) {
                    case .incomplete: break loop
                    case .turn(let turn): startParserTurn(turn, context: context)
                    case .forGood: return handOver(context: context)
                    }
                case .plain(let request):
                    inbound?.moveReaderIndex(forwardBy: request.headLength)
                    begin(request, context: context)
                }
            case .deciding:
                break loop
            case .lent:
                guard parserTurn?.requestRead == false else { break loop }  // the rest waits for the answer
                lendMore(context: context)
            case .forwarding(let exchange):
                guard let upstream = exchange.upstream, upstream.isWritable else { break loop }
                guard let slice = inbound?.readPrefix(upTo: exchange.bodyRemaining) else { break loop }
                exchange.bodyRemaining -= slice.readableBytes
                exchange.sentBody = true
                exchange.unflushed = true
                upstream.send(slice)
                if exchange.bodyRemaining == 0 { requestEnded(exchange) }
            case .discarding(let remaining):
                let dropped = min(remaining, pending.readableBytes)
                inbound?.moveReaderIndex(forwardBy: dropped)
                reading = remaining == dropped ? .head : .discarding(remaining: remaining - dropped)
            }
        }
        if inbound?.readableBytes == 0 { inbound = nil }
        if let exchange, exchange.unflushed {
            exchange.unflushed = false
            exchange.upstream?.flush()
        }
        if pendingRead, wantsClientBytes, !handedOver {
            pendingRead = false
            context.read()
        }
    }

    // MARK: the parser's turns

    /// NIO's parser and the handlers behind it join the pipeline, the first time; false if
    /// they could not (the connection is then closed).
    private func parserJoined(context: ChannelHandlerContext) -> Bool {
        guard parserWatch == nil else { return true }
        do {
            let pipeline = context.pipeline.syncOperations
            try joinParser(pipeline, self)
            let watch = ParserTurnWatch()
            try pipeline.addHandler(watch, position: .after(pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)))
            parserWatch = watch
            return true
        } catch {
            context.close(promise: nil)
            return false
        }
    }

    /// A request for the parser's side: its bytes go to the parser as they come, but for the
    /// field lines it is not to read.
    private func startParserTurn(_ turn: ParserTurn, context: ChannelHandlerContext) {
        guard parserJoined(context: context) else { return }
        if let pending = inbound, !turn.ignoredLines.isEmpty { inbound = turn.leavingOutIgnoredLines(of: pending) }
        parserTurn = turn
        parserAnswerEnded = false
        reading = .lent
        context.fireUserInboundEventTriggered(Turn.parser)
        lendMore(context: context)
    }

    /// Gives the parser the bytes read that belong to the lent request (see `ParserTurn`).
    private func lendMore(context: ChannelHandlerContext) {
        guard var turn = parserTurn, let share = inbound?.withUnsafeReadableBytes({ turn.share(of: $0) }) else { return }
        let lent = turn.lend(share) { count in
            parserRequestEnds = 0
            // The share counts bytes of `inbound`: they are there.
            if let bytes = inbound?.readSlice(length: count) { context.fireChannelRead(wrapInboundOut(bytes)) }
            return parserRequestEnds
        }
        parserTurn = turn
        guard lent != .readDifferently else { return handOver(context: context) }
        context.fireChannelReadComplete()
        if parserTurnIsOver { endParserTurn(context: context) }
    }

    private var parserTurnIsOver: Bool { parserTurn?.requestRead == true && parserAnswerEnded }

    /// The lent request has been read and answered: the byte path serves the connection again.
    private func endParserTurn(context: ChannelHandlerContext) {
        parserTurn = nil
        reading = .head
        gateway.metrics?.recordParserHandover(connectionReturned: true)
        context.fireUserInboundEventTriggered(Turn.bytePath)
        idleClock?.restart()
    }

    private func endParserTurnIfOver() {
        guard let context, !handedOver, parserTurnIsOver else { return }
        endParserTurn(context: context)
        process()
    }

    /// A request the byte path does not lend (`ParserTurn.scan`), or one lent that the parser
    /// read differently: the connection goes to NIO's parser and the handlers behind it for
    /// good, starting with that request's bytes (or what is left of them).
    private func handOver(context: ChannelHandlerContext) {
        handedOver = true
        idleClock?.stop()
        gateway.metrics?.recordParserHandover(connectionReturned: false)
        guard parserJoined(context: context) else { return }
        parserTurn = nil
        context.fireUserInboundEventTriggered(Turn.parser)
        if let parserWatch {
            self.parserWatch = nil
            context.pipeline.syncOperations.removeHandler(parserWatch, promise: nil)
        }
        if let inbound, inbound.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(inbound)) }
        inbound = nil
        context.fireChannelReadComplete()
        // A read from the back of the pipeline, as NIO's own after a read: the handlers that
        // serve the connection now see it (back-pressure, the idle clock), whether or not
        // one this handler forwarded earlier is still out.
        pendingRead = false
        context.channel.read()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func begin(_ request: PlainGatewayRequest, context: ChannelHandlerContext) {
        if request.closeAfter { closeAfterAnswer = true }
        requestStarted = .now
        requestMethod = request.request.method
        if let answer = gateway.cachedAnswer(request.request, remoteAddress: remoteAddress, recall: &recall) {
            return act(on: answer, for: request)
        }
        reading = .deciding
        decideFromStore(request.request, remoteAddress: remoteAddress) { answer in self.act(on: answer, for: request) }
    }

    private func act(on answer: GatewayAnswer, for request: PlainGatewayRequest) {
        let bodyLength = request.contentLength ?? 0
        switch answer {
        case .respond(let answer):
            reading = bodyLength > 0 ? .discarding(remaining: bodyLength) : .head
            respond(answer)
        case .forward(let target):
            let exchange = ByteExchange(
                target: target, head: request.forwardedHead(for: target, clientIP: clientIP), bodyLength: bodyLength,
                method: request.request.method, activity: activity)
            self.exchange = exchange
            reading = bodyLength > 0 ? .forwarding(exchange) : .head
            if bodyLength == 0 { exchange.requestSent = true }
            connect(exchange)
        }
    }

    /// The whole request has gone to the app.
    private func requestEnded(_ exchange: ByteExchange) {
        exchange.requestSent = true
        if case .forwarding(let forwarding) = reading, forwarding === exchange { reading = .head }
    }

    // MARK: answers of its own

    private func respond(_ answer: FixedAnswer) {
        guard let context else { return }
        var head = HeadText(capacity: 256)
        head.appendStatusLine(answer.status.code, answer.status.reasonPhrase)
        for field in answer.head.headerFields { head.appendField(field.name.rawName, field.value) }
        if closeAfterAnswer { head.append("Connection: close\r\n") }
        head.append("\r\n")
        context.write(wrapOutboundOut(head.buffer()), promise: nil)
        if requestMethod != .head, answer.body.readableBytes > 0 { context.write(wrapOutboundOut(answer.body), promise: nil) }
        finishAnswer(context: context, status: answer.status.code)
    }

    /// Flushes the end of an answer, then lets the next request go (or closes).
    private func finishAnswer(context: ChannelHandlerContext, status: Int, closing: Bool = false) {
        timing.record(.now - requestStarted, method: requestMethod, status: status, in: gateway.metrics)
        idleClock?.restart()
        guard closeAfterAnswer || closing else {
            context.flush()
            return process()
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: forwarding

    /// Sends the head; the body follows from what the client sends.
    func attach(_ connection: Upstream, to exchange: ByteExchange) {
        exchange.upstream = connection
        idleClock?.restart()  // the rest of a body may come now
        connection.owner = self
        connection.send(exchange.head)
        exchange.unflushed = true
        if case .forwarding = reading {} else {
            exchange.unflushed = false
            connection.flush()
        }
    }

    func answerInstead(_ answer: FixedAnswer, of exchange: ByteExchange) {
        if case .forwarding = reading { reading = .discarding(remaining: exchange.bodyRemaining) }
        respond(answer)
    }

    func closeClient() {
        context?.flush()
        context?.close(promise: nil)
    }

    // MARK: what the app's connection reports

    func upstreamRead(_ bytes: ByteBuffer) {
        guard let context, let exchange else { return }
        let relayed = exchange.relay(bytes, closeClient: closeAfterAnswer) { context.write(wrapOutboundOut($0), promise: nil) }
        switch relayed {
        case .more:
            break
        case .ended(let extraBytes):
            responseEnded(exchange, extraBytes: extraBytes, context: context)
        case .malformed:
            handle(UpstreamTrouble.malformed(label: exchange.target.label, responseStarted: exchange.responseStarted))
        }
    }

    /// The response is complete: the app's connection goes back to the pool when both it and
    /// the request are whole, and the next request may go.
    private func responseEnded(_ exchange: ByteExchange, extraBytes: Bool, context: ChannelHandlerContext) {
        self.exchange = nil
        if extraBytes { exchange.upstream?.reusable = false }  // bytes after the response: nothing to trust there
        exchange.releaseUpstream(to: pool)
        // The app answered before reading the whole body: the rest is dropped.
        if case .forwarding(let forwarding) = reading, forwarding === exchange {
            reading = .discarding(remaining: exchange.bodyRemaining)
        }
        finishAnswer(context: context, status: exchange.response?.status ?? 502)
    }

    /// Flushes the answer in progress; one that ended was flushed with its end (`finishAnswer`).
    func upstreamReadComplete() {
        if exchange != nil { context?.flush() }
    }

    func upstreamBecameWritable() {
        idleClock?.restart()  // the rest of a body may come again
        process()
    }

    func upstreamEnded(_ connection: AnyObject, error: (any Error)?) {
        guard let context, let exchange, exchange.upstream === connection else { return }
        if error == nil, exchange.response?.framing == .untilClose {
            self.exchange = nil
            return finishAnswer(context: context, status: exchange.response?.status ?? 200, closing: true)
        }
        upstreamFailed(exchange, error: error)
    }
}

extension GatewayByteProxy: ExchangeForwarder {
    typealias Upstream = UpstreamConnection<ByteBuffer, ByteBuffer>

    /// The pools of connections to apps, one per event loop.
    private static let pools = EventLoopLocal<UpstreamPool<ByteBuffer, ByteBuffer>>()
}

@available(*, unavailable)
extension GatewayByteProxy: Sendable {}
