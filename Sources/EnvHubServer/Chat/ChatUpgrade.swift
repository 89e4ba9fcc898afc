import Crypto
import EnvHubCore
import EnvHubStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// Opens the chat socket at `GET /api/chat` (docs/chat.md): checks the session, answers the
/// WebSocket handshake (RFC 6455 §4.2.2) and swaps the connection's HTTP handlers for
/// WebSocket ones and a `ChatSocket`, the way `WebSocketTunnel` swaps them for a byte glue.
struct ChatUpgrade: Sendable {
    static let path = "/api/chat"
    /// Frames above this fail the connection (1009); below it, `ChatSocket` answers large ones with an error frame.
    static let maxFrameSize = 1 << 20
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 512 << 10, high: 1 << 20)
    private static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    let hub: ChatHub
    let sessions: SessionAuthority
    let store: any HubStore

    func claims(_ head: HTTPRequest) -> Bool {
        guard let path = head.path else { return false }
        return (path == Self.path || path.hasPrefix(Self.path + "?")) && WebSocketTunnel.isWebSocketUpgrade(head)
    }

    func run(_ head: HTTPRequest, channel: any Channel, writer: consuming ResponseWriter) async throws {
        if let refusal = CrossOrigin.refusal(of: head) { return try await refuse(FixedAnswer(.crossOrigin(refusal)), writer) }
        guard let token = AuthenticationMiddleware.token(in: head.headerFields),
              let identity = await sessions.identity(for: token) else {
            return try await refuse(FixedAnswer(.unauthenticated("sign in before opening the chat socket")), writer)
        }
        guard head.method == .get, head.headerFields[.secWebSocketVersion] == "13",
              let key = head.headerFields[.secWebSocketKey], Data(base64Encoded: key)?.count == 16 else {
            return try await refuse(FixedAnswer(.badRequest(
                "a chat socket opens with GET, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key")), writer)
        }
        let accept = Data(Insecure.SHA1.hash(data: Data((key + Self.acceptGUID).utf8))).base64EncodedString()
        let (hub, store) = (hub, store)
        try await channel.eventLoop.submit {
            try Self.switchProtocols(channel, accept: accept, socket: ChatSocket(identity: identity, hub: hub, store: store))
        }.get()
        try? await channel.closeFuture.get()
    }

    private func refuse(_ answer: FixedAnswer, _ writer: consuming ResponseWriter) async throws {
        var answer = answer
        answer.headers[.connection] = "close"
        let response = answer.response
        try await writer.write(response: response.head, body: response.body)
    }

    private static func switchProtocols(_ channel: any Channel, accept: String, socket: ChatSocket) throws {
        let pipeline = channel.pipeline.syncOperations
        // Look everything up first, so that a failure leaves the pipeline as it was.
        let requestDecoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let http = try TunnelingHTTP1Channel.httpHandlers(of: pipeline)
        for handler in http { pipeline.removeHandler(handler, promise: nil) }
        let frameDecoder = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize))
        try pipeline.addHandlers(
            [frameDecoder, WebSocketFrameEncoder(), WebSocketProtocolErrorHandler(), socket], position: .after(requestDecoder))
        try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: writeBufferWaterMark)
        var head = channel.allocator.buffer(capacity: 160)
        head.writeString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n")
        try pipeline.context(handler: frameDecoder).writeAndFlush(NIOAny(head), promise: nil)
        // Bytes the client sent after its request go to the frame decoder from here on.
        pipeline.removeHandler(requestDecoder, promise: nil)
    }
}
