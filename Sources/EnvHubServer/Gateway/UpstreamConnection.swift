import EnvHubRuntime
import NIOCore
import NIOPosix

/// The client side of an exchange, as its connection to the app reports to it.
protocol UpstreamOwner<Response>: AnyObject {
    associatedtype Response
    /// The app is read only while this holds (back-pressure).
    var clientIsWritable: Bool { get }
    func upstreamRead(_ response: Response)
    func upstreamReadComplete()
    func upstreamBecameWritable()
    /// The connection closed, or failed with `error`, during the exchange.
    func upstreamEnded(_ connection: AnyObject, error: (any Error)?)
    /// The app sent nothing, nor took anything, for the idle timeout; the connection closes.
    func upstreamTimedOut(_ connection: AnyObject)
}

/// One connection from the gateway to an environment's port, on the event loop of the client
/// connection it serves. It carries one exchange at a time for its owner; between exchanges
/// it waits in its event loop's `UpstreamPool` for the next request to the same app. The
/// byte path (`GatewayByteProxy`) reads and writes bytes; `GatewayProxyHandler` writes request
/// parts and reads response parts through NIO's HTTP/1 client codec.
final class UpstreamConnection<Request, Response>: ChannelDuplexHandler {
    typealias InboundIn = Response
    typealias OutboundIn = Request
    typealias OutboundOut = Request

    let upstream: Endpoint
    /// The client side of the exchange in progress; nil while pooled.
    var owner: (any UpstreamOwner<Response>)?
    /// The pool the connection goes back to between exchanges, told when it closes there.
    fileprivate var pool: UpstreamPool<Request, Response>?
    /// Set false by the owner once a response shows the connection cannot carry another
    /// request, and here when it ends.
    var reusable = true
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// How long the app may send nothing (nor take any of a request) during an exchange before
    /// the connection closes, how long the connection may wait in the pool between exchanges,
    /// and the clock of both, restarted by every read and send (here rather than in NIO's
    /// `IdleStateHandler`: one handler less for every read and write of every exchange to pass
    /// through).
    private let idleTimeout: TimeAmount
    private let keepAliveTimeout: TimeAmount
    private var idleClock: IdleClock?

    private init(upstream: Endpoint, idleTimeout: TimeAmount, keepAliveTimeout: TimeAmount) {
        self.upstream = upstream
        self.idleTimeout = idleTimeout
        self.keepAliveTimeout = min(keepAliveTimeout, idleTimeout)
    }

    /// Connects to the app on `eventLoop`: 5 s to connect, then `idleTimeout` in which the app
    /// neither sends a byte nor takes one closes the connection during an exchange (its owner
    /// hears of it first), and `keepAliveTimeout` (at most `idleTimeout`) closes it while it
    /// waits in the pool. `codec` adds what goes between the socket and this handler.
    static func connect(
        to upstream: Endpoint, on eventLoop: any EventLoop, idleTimeout: Duration, keepAliveTimeout: Duration,
        codec: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<UpstreamConnection> {
        let timeout = TimeAmount(idleTimeout), keepAlive = TimeAmount(keepAliveTimeout)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads grow to 256 KiB (NIO's default stops at 64 KiB): fewer system calls per byte
            // relayed, which is most of what a fast download costs the hub (bench/gateway).
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 << 10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try codec(pipeline)
                    try pipeline.addHandler(UpstreamConnection(upstream: upstream, idleTimeout: timeout, keepAliveTimeout: keepAlive))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .flatMapThrowing { channel in
                try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
            }
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Writes a part of the request. The app taking the request is not idleness: the owner
    /// sends only while the connection is writable, so a send means the app has been reading.
    func send(_ request: Request) {
        idleClock?.restart()
        context?.write(wrapOutboundOut(request), promise: nil)
    }
    func flush() { context?.flush() }
    func close() { context?.close(promise: nil) }

    /// Reads again once the client can take what is read.
    func resumeReading() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startIdleClock() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        idleClock?.stop()
        ended(nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleClock()
        context.fireChannelActive()
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
        idleClock?.restart()
        owner?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleClock?.stop()
        ended(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ended(error)
        context.close(promise: nil)
    }

    // MARK: the idle clock

    private func startIdleClock() {
        guard idleClock == nil, let context else { return }
        idleClock = IdleClock(timeout: idleTimeout, checkingAtLeastEvery: keepAliveTimeout)
        idleClock?.start(on: context.eventLoop, checkIdle)
    }

    /// Closes the connection when the app has sent nothing, nor taken anything, for
    /// `idleTimeout` during an exchange (its owner hears of it first), or for
    /// `keepAliveTimeout` while the connection waits in the pool. Checks come at least every
    /// `keepAliveTimeout`, so a connection put back in the pool is closed on time.
    private func checkIdle() {
        guard let context, context.channel.isActive else { return }
        idleClock?.timeout = owner == nil ? keepAliveTimeout : idleTimeout
        guard idleClock?.hasRunOut(counting: true, on: context.eventLoop, checkIdle) == true else { return }
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
        guard let owner else {
            pool?.forget(self)  // if it closed while waiting there
            pool = nil
            return
        }
        self.owner = nil
        owner.upstreamEnded(self, error: error)
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// Idle connections to environments, by address, for one event loop; used only on that loop.
final class UpstreamPool<Request, Response> {
    typealias Connection = UpstreamConnection<Request, Response>

    /// Idle connections kept per app; more are closed when their exchange ends.
    static var maxIdlePerUpstream: Int { 64 }
    /// One app's idle connections. A class, so that taking one and putting one back change it
    /// in place after a plain lookup: a dictionary's in-place accessor allocates its frame on
    /// every call for this key type.
    private final class Idle {
        var connections: [Connection] = []
    }
    private var idle: [Endpoint: Idle] = [:]
    private let codec: @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void

    /// `codec`: for new connections (see `UpstreamConnection.connect`).
    init(codec: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) {
        self.codec = codec
    }

    /// A live idle connection to `upstream`, if there is one.
    func idleConnection(to upstream: Endpoint) -> Connection? {
        guard let idle = idle[upstream] else { return nil }
        while let connection = idle.connections.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// A new connection to `upstream` for an exchange, once connected (`idleTimeout` as in
    /// `UpstreamConnection.connect`). `done` is not called when `wanted` no longer holds by
    /// then (the new connection is closed instead).
    func newConnection(
        to upstream: Endpoint, on eventLoop: any EventLoop, idleTimeout: Duration, keepAliveTimeout: Duration,
        wanted: @escaping () -> Bool, _ done: @escaping (Result<Connection, any Error>) -> Void
    ) {
        Connection.connect(to: upstream, on: eventLoop, idleTimeout: idleTimeout, keepAliveTimeout: keepAliveTimeout, codec: codec)
            .assumeIsolated().whenComplete { result in
                guard wanted() else {
                    if case .success(let connection) = result { connection.close() }
                    return
                }
                if case .success(let connection) = result { connection.pool = self }
                done(result)
            }
    }

    /// Takes back a connection whose exchange ended; closes it unless it can carry another.
    func put(_ connection: Connection) {
        guard connection.reusable, connection.isActive else { return connection.close() }
        let kept: Idle
        if let existing = idle[connection.upstream] {
            kept = existing
        } else {
            kept = Idle()
            idle[connection.upstream] = kept
        }
        guard kept.connections.count < Self.maxIdlePerUpstream else { return connection.close() }
        kept.connections.append(connection)
    }

    /// Lets go of a connection that closed while it waited here (the keep-alive timeout, or
    /// the app closed it), and of its app's entry once that is empty: an app that stopped, or
    /// started again on another port, may never be asked for again.
    fileprivate func forget(_ connection: Connection) {
        guard let kept = idle[connection.upstream],
              let index = kept.connections.firstIndex(where: { $0 === connection }) else { return }
        kept.connections.remove(at: index)
        if kept.connections.isEmpty { idle[connection.upstream] = nil }
    }

    /// How many connections wait here, by app (closed ones included until they are let go of).
    var waiting: [Endpoint: Int] { idle.mapValues(\.connections.count) }
}
