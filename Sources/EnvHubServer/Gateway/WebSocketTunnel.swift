import EnvHubCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOPosix

/// Relays one WebSocket upgrade to a backend: connects, sends the handshake, and if the backend
/// switches protocols, answers the client with the backend's 101 and splices the two connections
/// into a raw byte tunnel, so frames, pings, close codes and extensions pass untouched.
enum WebSocketTunnel {
    static let connectTimeout = TimeAmount.seconds(5)
    /// How long a connected backend may take to answer the handshake (a refusal: with its body).
    static let handshakeTimeout = TimeAmount.seconds(30)
    /// The most of a refusal's body passed on.
    static let maxRefusal = 64 * 1024

    /// `Connection: upgrade` with an Upgrade that `asksForWebSocket` (tokens, any case), as
    /// browsers send it. The byte path's scans ask `asksForWebSocket` of the same field, so
    /// both paths agree on which requests are WebSocket handshakes.
    static func isWebSocketUpgrade(_ head: HTTPRequest) -> Bool {
        ForwardedHeaders.tokens(head.headerFields[values: .connection]).contains("upgrade")
            && head.headerFields[values: .upgrade].contains(where: asksForWebSocket(upgrade:))
    }

    /// Whether an Upgrade field's value asks for WebSocket, the only protocol the hub switches
    /// to (with or without a version). An Upgrade asking for anything else (curl `--http2`
    /// sends `h2c`) is ignored, as RFC 9110 §7.8 allows: the request is answered in HTTP/1.1.
    static func asksForWebSocket(upgrade value: String) -> Bool {
        FieldValue.tokens(CollectionOfOne(value)).contains { $0 == "websocket" || $0.hasPrefix("websocket/") }
    }

    /// Tunnels `request` to `target` on behalf of `client` and returns once the tunnel has closed.
    /// A backend that does not switch protocols has its answer passed on, as any proxy would
    /// (a 401 with its challenge, a 426 with the versions it speaks, a redirect), with the
    /// gateway's rules for answers (`TunnelTarget.answer`); one that cannot be reached, or
    /// answers with more than `maxRefusal` bytes, is reported with a JSON error. Either way the
    /// connection then ends (by throwing). A handshake with a body is refused (400) without
    /// asking the app: the tunnel sends the app the head alone, and an app that read the body
    /// its head announced would wait for it until the handshake timed out.
    static func run(
        _ request: HTTPRequest, to target: TunnelTarget, client: any Channel, writer: consuming ResponseWriter
    ) async throws {
        if request.headerFields[.transferEncoding] != nil || (request.headerFields[.contentLength].flatMap { Int($0) } ?? 0) > 0 {
            throw try await refuse(400, code: "bad_request", "a WebSocket handshake carries no body", writer)
        }
        let backend: any Channel
        let answer: HTTPResponseHead
        let refusalBody: EventLoopFuture<ByteBuffer>
        do {
            (backend, answer, refusalBody) = try await handshake(
                backendHead(client: request, rewritten: target.head), target, on: client.eventLoop)
        } catch {
            throw try await refuse(502, "the app did not take the WebSocket connection: \(error)", writer)
        }
        guard answer.status.code == 101 else {
            defer { backend.close(promise: nil) }
            let body: ByteBuffer, response: HTTPResponse
            do {
                body = try await refusalBody.get()
                response = try HTTPResponse(answer)
            } catch {
                throw try await refuse(502, "the app answered the WebSocket handshake with \(answer.status.code): \(error)", writer)
            }
            var head = target.answer(response)
            head.headerFields[.connection] = "close"
            head.headerFields[.contentLength] = String(body.readableBytes)
            try await writer.write(response: head, body: .init(byteBuffer: body))
            throw TunnelError.refused
        }
        // The 101 goes out as raw bytes in `splice`, not through Hummingbird's writer: after it,
        // nothing on this connection is HTTP any more.
        do {
            try await client.eventLoop.submit {
                try splice(client: client, backend: backend, answer: answer)
            }.get()
        } catch {
            backend.close(promise: nil)
            client.close(promise: nil)
            throw error
        }
        target.opened()
        try? await client.closeFuture.get()
        target.closed()
        backend.close(promise: nil)
    }

    /// The head sent to the backend: the caller's rewrite, with the handshake fields exactly as the
    /// client sent them (the backend's Sec-WebSocket-Accept must answer the client's key).
    static func backendHead(client: HTTPRequest, rewritten: HTTPRequest) -> HTTPRequest {
        var head = rewritten
        let handshake: [HTTPField.Name] = [
            .upgrade, .secWebSocketKey, .secWebSocketVersion, .secWebSocketProtocol, .secWebSocketExtensions,
        ]
        for name in handshake { head.headerFields[values: name] = client.headerFields[values: name] }
        head.headerFields[.connection] = "Upgrade"
        return head
    }

    /// Connects to the backend on the client's event loop (the glue needs both on one loop),
    /// sends `head` and waits for the response head; a refusal's body follows in the future
    /// returned with it (within the same deadline).
    private static func handshake(
        _ head: HTTPRequest, _ target: TunnelTarget, on eventLoop: any EventLoop
    ) async throws -> (any Channel, HTTPResponseHead, EventLoopFuture<ByteBuffer>) {
        let request = try HTTPRequestHead(head)
        let answer = eventLoop.makePromise(of: HTTPResponseHead.self)
        let refusalBody = eventLoop.makePromise(of: ByteBuffer.self)
        let backend: any Channel
        do {
            backend = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(connectTimeout)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            HTTPRequestEncoder(),
                            // keeps bytes the backend sends right after its 101 for the glue
                            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)),
                            BackendHandshake(request: request, answer: answer, refusalBody: refusalBody),
                        ])
                    }
                }
                .connect(host: target.host, port: target.port).get()
        } catch {
            answer.fail(error)
            refusalBody.fail(error)
            throw error
        }
        let timeout = eventLoop.scheduleTask(in: handshakeTimeout) {
            answer.fail(TunnelError.noAnswer)
            refusalBody.fail(TunnelError.noAnswer)
        }
        refusalBody.futureResult.whenComplete { _ in timeout.cancel() }
        do {
            return (backend, try await answer.futureResult.get(), refusalBody.futureResult)
        } catch {
            backend.close(promise: nil)
            throw error
        }
    }

    /// Swaps both pipelines from HTTP to a `ByteGlue` pair, on the event loop both channels share.
    ///
    /// Order matters: each glue goes in right after its decoder before the decoder is removed,
    /// because a removed decoder hands the bytes it still holds (sent right after the head) to the
    /// next handler; the 101 is written before any of the backend's bytes can follow it; and the
    /// backend's decoder leaves before anything is written to the backend (see below).
    private static func splice(
        client: any Channel, backend: any Channel, answer: HTTPResponseHead
    ) throws {
        let clientPipeline = client.pipeline.syncOperations
        let backendPipeline = backend.pipeline.syncOperations
        // Look everything up first, so that a failure leaves both pipelines as they were.
        let requestDecoder = try clientPipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let responseDecoder = try backendPipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
        let clientHTTP = try TunnelingHTTP1Channel.httpHandlers(of: clientPipeline)
        let backendHTTP: [any RemovableChannelHandler] = [
            try backendPipeline.handler(type: BackendHandshake.self),
            try backendPipeline.handler(type: HTTPRequestEncoder.self),
        ]
        for handler in clientHTTP { clientPipeline.removeHandler(handler, promise: nil) }
        for handler in backendHTTP { backendPipeline.removeHandler(handler, promise: nil) }
        let (clientGlue, backendGlue) = ByteGlue.matchedPair()
        try clientPipeline.addHandler(clientGlue, position: .after(requestDecoder))
        try backendPipeline.addHandler(backendGlue)

        let head = switchingProtocols(answer)
        try clientPipeline.context(handler: clientGlue).writeAndFlush(NIOAny(head), promise: nil)
        // The response decoder watches outbound request heads, so nothing may be written to the
        // backend until it has gone: only then does the request decoder hand over the client's
        // early bytes. Leftovers arrive without a read-complete, hence the explicit flushes.
        backendPipeline.removeHandler(responseDecoder).assumeIsolated().whenSuccess {
            client.flush()
            clientPipeline.removeHandler(requestDecoder).whenSuccess { backend.flush() }
        }
        if !client.isActive || !backend.isActive {
            client.close(promise: nil)
            backend.close(promise: nil)
        }
    }

    /// The backend's 101 as the client will see it: its reason and every header it sent.
    static func switchingProtocols(_ answer: HTTPResponseHead) -> ByteBuffer {
        var head = HeadText(capacity: 256)
        head.appendStatusLine(101, answer.status.reasonPhrase)
        for (name, value) in answer.headers { head.appendField(name, value) }
        head.append("\r\n")
        return head.buffer()
    }

    /// Answers with `status` and the API's JSON error; the caller then ends the connection by
    /// throwing what this returns, as Hummingbird's own failed upgrade does: its parser has
    /// stopped at the upgrade head.
    private static func refuse(
        _ status: Int, code: String = "bad_gateway", _ message: String, _ writer: consuming ResponseWriter
    ) async throws -> TunnelError {
        let response = EnvHubError(code: code, status: status, message: message)
            .response(extraHeaders: [.connection: "close"])
        try await writer.write(response: response.head, body: response.body)
        return .refused
    }
}

enum TunnelError: Error, CustomStringConvertible {
    /// The client was told why; its connection ends.
    case refused
    /// The backend accepted the connection but sent no response head in time.
    case noAnswer
    /// The backend closed the connection before answering.
    case closedBeforeAnswer
    /// The backend's refusal has a body longer than `WebSocketTunnel.maxRefusal`.
    case refusalTooLarge

    var description: String {
        switch self {
        case .refused: "the tunnel was refused"
        case .noAnswer: "no answer to the handshake within \(WebSocketTunnel.handshakeTimeout)"
        case .closedBeforeAnswer: "the connection closed before an answer"
        case .refusalTooLarge: "its answer is longer than \(WebSocketTunnel.maxRefusal >> 10) KiB"
        }
    }
}

/// The backend side of the handshake: sends the request head once connected and reports the
/// response head. After a 101, anything after the head stays in the decoder for the glue; after
/// anything else (a refusal), the body is collected and reported at its end.
private final class BackendHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let answer: EventLoopPromise<HTTPResponseHead>
    private let refusalBody: EventLoopPromise<ByteBuffer>
    private var collected = ByteBuffer()

    init(request: HTTPRequestHead, answer: EventLoopPromise<HTTPResponseHead>, refusalBody: EventLoopPromise<ByteBuffer>) {
        self.request = request
        self.answer = answer
        self.refusalBody = refusalBody
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):  // (the decoder drops other 1xx answers)
            answer.succeed(head)
            if head.status == .switchingProtocols { refusalBody.succeed(ByteBuffer()) }  // no refusal
        case .body(var bytes):
            guard collected.readableBytes + bytes.readableBytes <= WebSocketTunnel.maxRefusal else {
                refusalBody.fail(TunnelError.refusalTooLarge)
                return context.close(promise: nil)
            }
            collected.writeBuffer(&bytes)
        case .end:
            refusalBody.succeed(collected)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(TunnelError.closedBeforeAnswer)  // no-op once answered
        refusalBody.fail(TunnelError.closedBeforeAnswer)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        refusalBody.fail(error)
        context.close(promise: nil)
    }
}
