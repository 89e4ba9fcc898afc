import EnvHubRuntime
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix

/// One HTTP/1.1 connection from the gateway to an environment's port, on the event loop of
/// the client connection it serves. It carries one exchange at a time for the
/// `GatewayProxyHandler` that owns it; between exchanges it waits in its event loop's
/// `UpstreamPool` for the next request to the same app.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPResponsePart
    typealias OutboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPRequestPart

    let upstream: Endpoint
    /// The client side of the exchange in progress; nil while pooled.
    var owner: GatewayProxyHandler?
    /// False once the app said it closes the connection after this response.
    private(set) var reusable = true
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    private init(upstream: Endpoint) {
        self.upstream = upstream
    }

    /// Connects to the app on `eventLoop` (see `connectUpstream`).
    static func connect(to upstream: Endpoint, on eventLoop: any EventLoop, idleTimeout: Duration) -> EventLoopFuture<UpstreamConnection> {
        connectUpstream(upstream, on: eventLoop, idleTimeout: idleTimeout) { pipeline in
            try pipeline.addHTTPClientHandlers(enableOutboundHeaderValidation: false)  // HTTPTypes validates
            try pipeline.addHandler(HTTP1ToHTTPClientCodec())
        } connection: {
            UpstreamConnection(upstream: upstream)
        }
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ part: HTTPRequestPart) { context?.write(wrapOutboundOut(part), promise: nil) }
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
            context.close(promise: nil)  // nothing may arrive between exchanges
            return
        }
        let part = unwrapInboundIn(data)
        if case .head(let head) = part, head.status.kind != .informational,
           ForwardedHeaders.tokens(head.headerFields[values: .connection]).contains("close") {
            reusable = false
        }
        owner.upstreamRead(part)
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

extension UpstreamConnection: PooledUpstream {
    static let pools = EventLoopLocal<UpstreamPool<UpstreamConnection>>()
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// Connects to an app on `eventLoop`: 5 s to connect, then `idleTimeout` without a byte from
/// the app closes the connection (its handler hears of it first). `codec` adds what goes
/// between the socket and `connection`'s handler.
func connectUpstream<Connection: ChannelHandler>(
    _ upstream: Endpoint, on eventLoop: any EventLoop, idleTimeout: Duration,
    codec: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void = { _ in },
    connection: @escaping @Sendable () -> Connection
) -> EventLoopFuture<Connection> {
    let timeout = TimeAmount.nanoseconds(Int64(clamping: idleTimeout.components.seconds) &* 1_000_000_000)
    return ClientBootstrap(group: eventLoop)
        .connectTimeout(.seconds(5))
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                try codec(pipeline)
                try pipeline.addHandler(IdleStateHandler(readTimeout: timeout))
                try pipeline.addHandler(connection())
            }
        }
        .connect(host: upstream.host, port: upstream.port)
        .flatMapThrowing { channel in
            try channel.pipeline.syncOperations.handler(type: Connection.self)
        }
}

/// A connection to an app that can wait in an `UpstreamPool` between exchanges.
protocol PooledUpstream: AnyObject {
    var upstream: Endpoint { get }
    var reusable: Bool { get }
    var isActive: Bool { get }
    func close()
    /// The pools of this kind of connection, one per event loop.
    static var pools: EventLoopLocal<UpstreamPool<Self>> { get }
}

/// Idle connections to environments, by address, for one event loop; used only on that loop.
final class UpstreamPool<Connection: PooledUpstream> {
    /// Idle connections kept per app; more are closed when their exchange ends.
    static var maxIdlePerUpstream: Int { 64 }
    private var idle: [Endpoint: [Connection]] = [:]

    /// A live idle connection to `upstream`, if there is one.
    func take(_ upstream: Endpoint) -> Connection? {
        while let connection = idle[upstream]?.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    func put(_ connection: Connection) {
        guard connection.reusable, connection.isActive, idle[connection.upstream, default: []].count < Self.maxIdlePerUpstream else {
            return connection.close()
        }
        idle[connection.upstream, default: []].append(connection)
    }

    /// The pool of `eventLoop`; call on that loop.
    static func of(_ eventLoop: any EventLoop) -> UpstreamPool {
        Connection.pools.value(on: eventLoop) { UpstreamPool() }
    }
}
