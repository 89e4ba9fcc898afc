import NIOCore
import NIOHTTPTypes

/// What Hummingbird's `HTTPConnectionStateHandler` does for a connection NIO's parser reads
/// (closing idle clients; on graceful shutdown, closing at once when no request is in
/// progress, else after the last answer), with the client's idleness told as the byte path
/// (`GatewayByteProxy`) tells it: only time in which the client owes bytes counts, between
/// requests or in the middle of one while a read is outstanding. A request body the hub
/// stops reading because the app it goes to cannot take more is waiting for the app, as an
/// answer being worked on is; Hummingbird's handler counted that as idleness and closed
/// uploads that a slow app held back.
///
/// A head must arrive whole within the timeout of its first bytes, as nginx's
/// `client_header_timeout` has it: bytes that make no part yet (a head still coming) do not
/// restart the clock, so a client that trickles a head in (slowloris) cannot hold the
/// connection. Bodies restart it with every read, as nginx's `client_body_timeout` does.
///
/// While the byte path serves the connection between the requests it lends the parser
/// (`GatewayByteProxy.Turn`), its own idle clock times the client, and this one waits.
final class ClientConnectionState: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let idleTimeout: TimeAmount?
    private var requestsInProgress = 0
    private var isRequestBeingRead = false
    /// A read has gone out to the socket and no bytes have come back yet.
    private var readOutstanding = false
    /// Restarted when the client starts to owe the bytes it owes now.
    private var idleClock: IdleClock?
    private var closeAfterAnswer = false
    /// The byte path in front serves the connection for now.
    private var bytePathServes = false
    /// A part was read since the last read completed.
    private var partRead = false
    /// Bytes of a head have come and the head has not: the clock runs from its first bytes.
    private var headComing = false

    /// `idleTimeout`: nil, never.
    init(idleTimeout: TimeAmount?) {
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleClock(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleClock?.stop()
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleClock(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partRead = true
        switch unwrapInboundIn(data) {
        case .head:
            headComing = false
            isRequestBeingRead = true
            requestsInProgress += 1
        case .body:
            break
        case .end:
            isRequestBeingRead = false
        }
        context.fireChannelRead(data)
    }

    /// Bytes came: parts (a head, or a body going on), or the first bytes of a head, restart
    /// the clock; more bytes of a head still coming do not.
    func channelReadComplete(context: ChannelHandlerContext) {
        readOutstanding = false
        let bytesOfAHead = !partRead && !isRequestBeingRead
        if !(bytesOfAHead && headComing) { idleClock?.restart() }  // not when they continue one
        headComing = bytesOfAHead
        partRead = false
        context.fireChannelReadComplete()
    }

    /// Reads that the handlers behind hold back (back-pressure) never come this way: the
    /// client's turn starts when one does (unless a head is still coming: its time runs on).
    func read(context: ChannelHandlerContext) {
        if !readOutstanding {
            readOutstanding = true
            if !headComing { idleClock?.restart() }
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        requestsInProgress -= 1
        guard requestsInProgress == 0 else { return context.write(data, promise: promise) }
        idleClock?.restart()
        if closeAfterAnswer {
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
        } else {
            context.write(data, promise: promise)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let turn = event as? GatewayByteProxy.Turn {
            bytePathServes = turn == .bytePath
            idleClock?.restart()
            return
        }
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        if requestsInProgress > 0 {
            closeAfterAnswer = true
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: idleness

    /// The client owes bytes: a read is out, and no request is in progress or one is being read
    /// (unless the byte path serves the connection).
    private var waitsForClient: Bool {
        !bytePathServes && readOutstanding && (requestsInProgress == 0 || isRequestBeingRead)
    }

    private func startIdleClock(_ context: ChannelHandlerContext) {
        guard let idleTimeout, idleClock == nil else { return }
        idleClock = IdleClock(timeout: idleTimeout)
        idleClock?.start(on: context.eventLoop, idleCheck(context))
    }

    /// The clock's check: closes the connection once the client has been waited for too long.
    private func idleCheck(_ context: ChannelHandlerContext) -> () -> Void {
        {
            guard context.channel.isActive else { return }
            let waiting = self.waitsForClient
            guard self.idleClock?.hasRunOut(counting: waiting, on: context.eventLoop, self.idleCheck(context)) == true else { return }
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension ClientConnectionState: Sendable {}
