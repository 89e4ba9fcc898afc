import EnvHubRuntime
import NIOCore

/// One plain TCP connection from the gateway's byte path to an app, on the event loop of the
/// client connection it serves: `GatewayByteProxy` writes the request's bytes and reads the
/// response's. Like `UpstreamConnection` it carries one exchange at a time and waits in its
/// loop's pool between exchanges.
final class ByteUpstreamConnection: ChannelDuplexHandler, PooledUpstream {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let pools = EventLoopLocal<UpstreamPool<ByteUpstreamConnection>>()

    let upstream: Endpoint
    /// The client side of the exchange in progress; nil while pooled.
    var owner: GatewayByteProxy?
    /// Set by the owner once a response shows whether the connection can carry another request.
    var reusable = true
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    private init(upstream: Endpoint) {
        self.upstream = upstream
    }

    /// Connects to the app on `eventLoop` (see `connectUpstream`).
    static func connect(to upstream: Endpoint, on eventLoop: any EventLoop, idleTimeout: Duration) -> EventLoopFuture<ByteUpstreamConnection> {
        connectUpstream(upstream, on: eventLoop, idleTimeout: idleTimeout, connection: { ByteUpstreamConnection(upstream: upstream) })
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ bytes: ByteBuffer) { context?.write(wrapOutboundOut(bytes), promise: nil) }
    func flush() { context?.flush() }
    func close() { context?.close(promise: nil) }

    /// Reads again once the client can take what is read.
    func resumeReading() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        ended(nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            reusable = false
            context.close(promise: nil)  // nothing may arrive between exchanges
            return
        }
        owner.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ended(error)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else { return context.fireUserInboundEventTriggered(event) }
        reusable = false
        if let owner {
            self.owner = nil
            owner.upstreamTimedOut(self)
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { owner?.upstreamBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// Reads only while the client can take more (back-pressure), and always while pooled
    /// (to notice the app closing the connection).
    func read(context: ChannelHandlerContext) {
        if owner?.clientIsWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func ended(_ error: (any Error)?) {
        reusable = false
        guard let owner else { return }
        self.owner = nil
        owner.upstreamEnded(self, error: error)
    }
}

@available(*, unavailable)
extension ByteUpstreamConnection: Sendable {}
