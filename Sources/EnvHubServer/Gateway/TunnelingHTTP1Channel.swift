import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Where to tunnel one upgrade request: the backend address and the request head to send it
/// (already rewritten by the caller: path, forwarded headers, cookies removed...).
struct TunnelTarget: Sendable {
    var host: String
    var port: Int
    var head: HTTPRequest   // HTTPTypes
    /// A refusal's head as the client is sent it (the gateway's rules for answers).
    var answer: @Sendable (HTTPResponse) -> HTTPResponse = { $0 }
    /// Called once the tunnel is open, and `closed` once it has closed (for idle tracking: an
    /// open tunnel is use even when quiet, like an idle noVNC or terminal tab).
    var opened: @Sendable () -> Void
    var closed: @Sendable () -> Void
}

/// nil: not tunnelled; the request goes to the ordinary responder (which will answer it, e.g. 401/404/503 JSON).
typealias TunnelDecision = @Sendable (HTTPRequest, _ remoteAddress: SocketAddress?) async -> TunnelTarget?

/// Hummingbird's HTTP/1.1 child channel plus one thing: a WebSocket upgrade request for which
/// `decide` returns a target is relayed to that backend as a transparent byte tunnel.
///
/// Why this shape: the pipeline and the request loop are `HTTP1Channel`'s (same handlers,
/// quiescing, `handleHTTP`; the idle timeout is `ClientConnectionState`'s, which does not take
/// a body held back by back-pressure for an idle client), and only the responder is wrapped,
/// so every other request is handled exactly as before. An upgrade request reaches the
/// wrapper in the connection's own task, after any earlier request on the connection has
/// been answered; the wrapper asks `decide` and, with a target, `WebSocketTunnel` handshakes
/// with the backend and then swaps both pipelines to a `ByteGlue` pair. NIO's upgrade handler
/// (what `HTTP1WebSocketUpgradeChannel` uses) was not used because it only looks at the first
/// request of a connection and resolves its decision in a future; this path works on any
/// request of a kept-alive connection, as proxies in front of the hub send them.
///
/// One deliberate difference in setup: the pipeline is configured with an empty server-upgrade
/// configuration. Its only effect is that the request decoder, when removed, hands on the bytes
/// a client sent right after an upgrade head instead of dropping them (the decoder stays paired
/// with the response encoder as in `HTTP1Channel`); with no upgraders, NIO's upgrade handler
/// passes the first request on unchanged and leaves the pipeline.
struct TunnelingHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let configuration: HTTP1Channel.Configuration
    let responder: HTTPChannelHandler.Responder
    /// Serves `/u/…` requests on the event loop (`GatewayProxyHandler`); nil: Hummingbird does.
    let gateway: Gateway?

    init(
        responder: @escaping HTTPChannelHandler.Responder,
        configuration: HTTP1Channel.Configuration = .init(),
        gateway: Gateway? = nil,
        chat: ChatUpgrade? = nil,
        decide: @escaping TunnelDecision
    ) {
        self.configuration = configuration
        self.gateway = gateway
        self.responder = { request, writer, channel in
            guard WebSocketTunnel.isWebSocketUpgrade(request.head) else { return try await responder(request, writer, channel) }
            if let chat, chat.claims(request.head) { return try await chat.run(request.head, channel: channel, writer: writer) }
            guard let target = await decide(request.head, channel.remoteAddress) else {
                return try await responder(request, writer, channel)
            }
            try await WebSocketTunnel.run(request.head, to: target, client: channel, writer: writer)
        }
    }

    /// `HTTP1Channel.setup`, with the decoder keeping what follows an upgrade head (see the type's comment).
    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            let connectionState = { ClientConnectionState(idleTimeout: configuration.idleTimeout) }
            if let gateway {
                // Up to 1 MiB of a relayed response may wait for the client before the app is read
                // less (NIO's default, 64 KiB, paused a fast download after every read).
                try channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: 512 << 10, high: 1 << 20))
                // First: plain gateway requests are served as bytes, idle clients and graceful
                // shutdown handled there. The HTTP handlers join right behind it when a request
                // first goes to them, not before: until then each would be one more step for every
                // read of the connection. The state handler goes in front of the proxy handler, so
                // that idle timeouts and graceful shutdown see the gateway's requests there too.
                let bytePath = GatewayByteProxy(gateway: gateway, clientIdleTimeout: configuration.idleTimeout) { pipeline, bytePath in
                    try addHTTPHandlers(
                        behind: [connectionState(), GatewayProxyHandler(gateway: gateway)], to: pipeline, after: bytePath)
                }
                try pipeline.addHandler(bytePath)
            } else {
                try addHTTPHandlers(behind: [connectionState()], to: pipeline, after: nil)
            }
            return try NIOAsyncChannel(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    /// Adds NIO's HTTP/1 server handlers, `HTTP1Semantics`, HTTPTypes' codec, the
    /// configuration's handlers and then `behind`, in this order: right after `front`, or last
    /// in the pipeline.
    private func addHTTPHandlers(
        behind: [any ChannelHandler], to pipeline: ChannelPipeline.SynchronousOperations, after front: (any ChannelHandler)?
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
        limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
        limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
        let position: ChannelPipeline.SynchronousOperations.Position = front.map { .after($0) } ?? .last
        let rest: [any ChannelHandler] =
            [HTTP1Semantics(), HTTP1ToHTTPServerCodec(secure: false)] + configuration.additionalChannelHandlers() + behind
        // Each addition `.after(front)` goes right behind `front`: there the rest goes in first.
        if front != nil { try pipeline.addHandlers(rest, position: position) }
        try pipeline.configureHTTPServerPipeline(
            position: position,
            withPipeliningAssistance: false,  // HTTP is pipelined by NIOAsyncChannel
            withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
            withErrorHandling: false,  // Hummingbird answers errors
            withOutboundHeaderValidation: false,  // HTTPTypes already validates
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits
        )
        if front == nil { try pipeline.addHandlers(rest, position: position) }
    }

    /// The HTTP handlers a switch to another protocol (a tunnelled or chat WebSocket) removes
    /// from a client's pipeline: all those `setup` adds but NIO's request decoder, which the
    /// caller removes last, once something is in place to take the bytes it still holds.
    /// Looked up all at once, so that a failure leaves the pipeline as it was.
    static func httpHandlers(of pipeline: ChannelPipeline.SynchronousOperations) throws -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = [
            try pipeline.handler(type: ClientConnectionState.self),  // its idle timer knows nothing of WebSockets
            try pipeline.handler(type: HTTP1ToHTTPServerCodec.self),
            try pipeline.handler(type: HTTP1Semantics.self),
            try pipeline.handler(type: HTTPResponseEncoder.self),
        ]
        if let proxy = try? pipeline.handler(type: GatewayProxyHandler.self) { handlers.append(proxy) }
        return handlers
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 as `.http1(configuration:)`, with WebSocket upgrades that `decide` targets
    /// tunnelled to their backend (see `TunnelingHTTP1Channel`).
    static func http1WithTunnels(
        configuration: HTTP1Channel.Configuration = .init(), decide: @escaping TunnelDecision
    ) -> HTTPServerBuilder {
        .init { responder in
            TunnelingHTTP1Channel(responder: responder, configuration: configuration, decide: decide)
        }
    }

    /// HTTP/1.1 with the gateway (its requests served on the event loop, its WebSocket
    /// upgrades tunnelled) and the chat socket; everything else answered by the router.
    static func http1WithGateway(
        _ gateway: Gateway, chat: ChatUpgrade, configuration: HTTP1Channel.Configuration = .init()
    ) -> HTTPServerBuilder {
        .init { responder in
            TunnelingHTTP1Channel(responder: responder, configuration: configuration, gateway: gateway, chat: chat) { head, remoteAddress in
                await gateway.tunnelTarget(head, remoteAddress: remoteAddress)
            }
        }
    }
}
