import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing
@testable import EnvHubServer

/// `.http1WithTunnels` over real sockets: a Hummingbird WebSocket backend behind a front
/// server that tunnels `/tunnel/…` to it, checked with the WebSocket client and, where bytes
/// matter, with a raw TCP connection.
@Suite("WebSocket tunnel")
struct WebSocketTunnelTests {
    @Test func textBinaryLargeMessagesAndCloseCodePassThrough() async throws {
        try await withHarness { harness async throws in
            let big = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) })
            let closeFrame = try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(harness.frontPort)/tunnel/echo", logger: quietLogger
            ) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 4 << 20).makeAsyncIterator()
                try await outbound.write(.text("hello"))
                #expect(try await messages.next() == .text("hello"))
                try await outbound.write(.binary(ByteBuffer(bytes: [0, 1, 2, 255])))
                #expect(try await messages.next() == .binary(ByteBuffer(bytes: [0, 1, 2, 255])))
                try await outbound.writeBinaryMessage(big)
                #expect(try await messages.next() == .binary(big))
                try await outbound.write(.text("close please"))
                #expect(try await messages.next() == nil)
            }
            #expect(closeFrame?.closeCode == .unknown(4001))
            #expect(closeFrame?.reason == "bye")
            #expect(harness.probe.opened == 1)
            _ = try await waitFor("the backend handler to end") { harness.probe.ended >= 1 ? true : nil }
            _ = try await waitFor("the tunnel to report it closed") { harness.probe.closed == 1 ? true : nil }
        }
    }

    /// On a kept-alive connection after an ordinary request: the 101 carries the backend's
    /// headers (accept, subprotocol); bytes sent right behind either head arrive; pings and a
    /// close with its code cross at the frame level.
    @Test func handshakePingsAndEarlyBytesPassExactly() async throws {
        try await withHarness { harness async throws in
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send("GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let plain = try await raw.readHead()
                #expect(plain.status == 200)
                #expect(try await raw.readBody(plain) == "plain ok")

                var handshake = ByteBuffer(string: Self.upgrade("/tunnel/echo?greet", extra: "Sec-WebSocket-Protocol: binary\r\n"))
                handshake.writeImmutableBuffer(RawConnection.clientFrame(opcode: 0x1, payload: Array("early".utf8)))
                try await raw.send(handshake)  // head and a first frame in one write
                let switched = try await raw.readHead()
                #expect(switched.status == 101)
                #expect(switched["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                #expect(switched["sec-websocket-protocol"] == "binary")
                #expect(switched["upgrade"]?.lowercased() == "websocket")
                #expect(try await raw.readFrame() == .init(opcode: 0x1, payload: Array("welcome".utf8)))
                #expect(try await raw.readFrame() == .init(opcode: 0x1, payload: Array("early".utf8)))

                try await raw.send(RawConnection.clientFrame(opcode: 0x9, payload: Array("cli-ping".utf8)))
                #expect(try await raw.readFrame() == .init(opcode: 0xA, payload: Array("cli-ping".utf8)))
                try await raw.send(RawConnection.clientFrame(opcode: 0x1, payload: Array("ping me".utf8)))
                #expect(try await raw.readFrame() == .init(opcode: 0x9, payload: Array("srv-ping".utf8)))
                try await raw.send(RawConnection.clientFrame(opcode: 0xA, payload: Array("srv-ping".utf8)))

                try await raw.send(RawConnection.clientFrame(opcode: 0x1, payload: Array("close please".utf8)))
                let close = [UInt8(4001 >> 8), UInt8(4001 & 0xFF)] + Array("bye".utf8)
                #expect(try await raw.readFrame() == .init(opcode: 0x8, payload: close))
                // The backend half-closes after its close frame; so does the tunnel towards us...
                #expect(try await raw.readToEnd().readableBytes == 0)
                // ...while our direction stays open for the answering close frame.
                try await raw.send(RawConnection.clientFrame(opcode: 0x8, payload: close))
                _ = try await waitFor("the backend handler to end", timeout: .seconds(10)) { harness.probe.ended == 1 ? true : nil }
            }
        }
    }

    @Test func closingTheClientEndsTheBackendSideAndQuietTunnelsStayActive() async throws {
        try await withHarness { harness async throws in
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send(Self.upgrade("/tunnel/echo"))
                #expect(try await raw.readHead().status == 101)
                try await raw.send(RawConnection.clientFrame(opcode: 0x2, payload: [7, 7, 7]))
                #expect(try await raw.readFrame() == .init(opcode: 0x2, payload: [7, 7, 7]))
                // Quiet now, and still open: in use.
                #expect(harness.probe.opened == 1 && harness.probe.closed == 0)
                #expect(harness.probe.ended == 0)
            }  // closes the TCP connection without a close frame
            _ = try await waitFor("the backend handler to see its input end", timeout: .seconds(10)) {
                harness.probe.ended == 1 ? true : nil
            }
            _ = try await waitFor("the tunnel to report it closed") { harness.probe.closed == 1 ? true : nil }
        }
    }

    @Test func ordinaryRequestsAndRefusedUpgradesGoToTheRouter() async throws {
        try await withHarness { harness async throws in
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send("GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let plain = try await raw.readHead()
                #expect(plain.status == 200)
                #expect(try await raw.readBody(plain) == "plain ok")
            }
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send(Self.upgrade("/tunnel/refused/echo"))
                let head = try await raw.readHead()
                #expect(head.status == 404)
                #expect(try await Self.errorCode(raw.readBody(head)) == "not_found")
            }
        }
    }

    @Test func gracefulShutdownClosesOpenTunnels() async throws {
        try await withHarness { harness async throws in
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send(Self.upgrade("/tunnel/echo"))
                #expect(try await raw.readHead().status == 101)
                await harness.stopFront()
                #expect(try await raw.readToEnd().readableBytes == 0)
            }
            _ = try await waitFor("the backend handler to end", timeout: .seconds(10)) { harness.probe.ended == 1 ? true : nil }
        }
    }

    @Test func unreachableBackendAnswers502() async throws {
        try await withHarness { harness async throws in
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send(Self.upgrade("/tunnel/dead/echo"))
                let head = try await raw.readHead()
                #expect(head.status == 502)
                #expect(head["content-type"]?.hasPrefix("application/json") == true)
                #expect(try await Self.errorCode(raw.readBody(head)) == "bad_gateway")
                #expect(try await raw.readToEnd().readableBytes == 0)
            }
        }
    }

    /// A backend that does not switch protocols has its answer passed on whole (status, fields,
    /// body), with `Connection: close`, after which the connection ends.
    @Test func backendRefusalIsPassedOn() async throws {
        try await withHarness { harness async throws in
            let (directStatus, directBody) = try await withRawConnection(port: harness.backendPort) { raw async throws in
                try await raw.send(Self.upgrade("/nowhere"))
                let head = try await raw.readHead()
                return (head.status, try await raw.readBody(head))
            }
            #expect(directStatus >= 400)
            try await withRawConnection(port: harness.frontPort) { raw async throws in
                try await raw.send(Self.upgrade("/tunnel/nowhere"))
                let head = try await raw.readHead()
                #expect(head.status == directStatus)
                #expect(head["connection"] == "close")
                #expect(try await raw.readBody(head) == directBody)
                #expect(try await raw.readToEnd().readableBytes == 0)
            }
        }
    }

    // MARK: - Harness

    /// RFC 6455's sample key, whose accept value is known: `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
    static func upgrade(_ path: String, extra: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n"
    }

    static func errorCode(_ body: String) throws -> String {
        struct Envelope: Decodable {
            struct Detail: Decodable { let code: String; let message: String }
            let error: Detail
        }
        return try JSONDecoder().decode(Envelope.self, from: Data(body.utf8)).error.code
    }

    /// What the backend saw and what the tunnel reported.
    final class Probe: Sendable {
        private let counts = NIOLockedValueBox((ended: 0, opened: 0, closed: 0))
        var ended: Int { counts.withLockedValue { $0.ended } }
        /// Tunnels reported open, and closed.
        var opened: Int { counts.withLockedValue { $0.opened } }
        var closed: Int { counts.withLockedValue { $0.closed } }
        func handlerEnded() { counts.withLockedValue { $0.ended += 1 } }
        func tunnelOpened() { counts.withLockedValue { $0.opened += 1 } }
        func tunnelClosed() { counts.withLockedValue { $0.closed += 1 } }
    }

    struct Harness: Sendable {
        let frontPort: Int
        let backendPort: Int
        let probe: Probe
        /// Starts the front server's graceful shutdown.
        let stopFront: @Sendable () async -> Void
    }

    /// Starts the backend, then the front tunnelling to it, runs `body` against both and stops them.
    func withHarness(_ body: @escaping @Sendable (Harness) async throws -> Void) async throws {
        let probe = Probe()
        let dead = try RefusingPort()
        defer { dead.close() }
        let deadPort = dead.port
        try await withTimeout("the tunnel test", .seconds(60)) {
            try await Self.backend(probe).testStoppingGracefully(.live) { backend async throws in
                let backendPort = try #require(backend.port)
                let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
                let front = Self.front(backendPort: backendPort, deadPort: deadPort, probe: probe) { channel in
                    portSink.yield(channel.localAddress?.port ?? 0)
                }
                let services = ServiceGroup(configuration: .init(services: [front], logger: quietLogger))
                try await withThrowingTaskGroup(of: Void.self) { group async throws in
                    group.addTask { try await services.run() }
                    let stopFront: @Sendable () async -> Void = { await services.triggerGracefulShutdown() }
                    // Stopped gracefully also when `body` fails: leaving the group by a throw
                    // would cancel the front (see `testStoppingGracefully`).
                    let outcome: Result<Void, any Error>
                    do {
                        var started = ports.makeAsyncIterator()
                        let frontPort = try #require(await started.next())
                        try await body(Harness(frontPort: frontPort, backendPort: backendPort, probe: probe, stopFront: stopFront))
                        outcome = .success(())
                    } catch {
                        outcome = .failure(error)
                    }
                    await services.triggerGracefulShutdown()
                    try await group.waitForAll()
                    try outcome.get()
                }
            }
        }
    }

    /// Echoes text and binary, answers `binary` as subprotocol, greets on `?greet`, pings on
    /// "ping me" and closes with 4001 "bye" on "close please".
    static func backend(_ probe: Probe) -> some ApplicationProtocol {
        let sockets = Router(context: BasicWebSocketRequestContext.self)
        sockets.ws("/echo") { request, _ in
            let offered = request.headers[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            return offered.contains { $0.trimmingCharacters(in: .whitespaces) == "binary" } ? .upgrade([.secWebSocketProtocol: "binary"]) : .upgrade()
        } onUpgrade: { inbound, outbound, context in
            defer { probe.handlerEnded() }
            if context.request.uri.query == "greet" { try await outbound.write(.text("welcome")) }
            for try await message in inbound.messages(maxSize: 4 << 20) {
                switch message {
                case .text("close please"):
                    try await outbound.close(.init(codeNumber: 4001), reason: "bye")
                case .text("ping me"):
                    try await outbound.write(.custom(.init(fin: true, opcode: .ping, data: ByteBuffer(string: "srv-ping"))))
                case .text(let text):
                    try await outbound.write(.text(text))
                case .binary(let data):
                    try await outbound.writeBinaryMessage(data)
                }
            }
        }
        return Application(
            router: Router(), server: .http1WebSocketUpgrade(webSocketRouter: sockets),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: quietLogger)
    }

    /// `/plain` answers text; `/tunnel/…` is tunnelled (prefix stripped) except `/tunnel/refused/…`,
    /// which the router answers 404, and `/tunnel/dead/…`, which goes to a port nobody listens on.
    static func front(
        backendPort: Int, deadPort: Int, probe: Probe, onServerRunning: @escaping @Sendable (any Channel) async -> Void
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/plain") { _, _ in "plain ok" }
        router.get("/tunnel/**") { _, _ in
            Response(
                status: .notFound, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error": {"code": "not_found", "message": "no tunnel here"}}"#)))
        }
        let decide: TunnelDecision = { head, _ in
            guard let path = head.path, path.hasPrefix("/tunnel/"), !path.hasPrefix("/tunnel/refused/") else { return nil }
            var rewritten = head
            rewritten.path = String(path.dropFirst("/tunnel".count))
            return TunnelTarget(
                host: "127.0.0.1", port: path.hasPrefix("/tunnel/dead/") ? deadPort : backendPort, head: rewritten,
                opened: { probe.tunnelOpened() }, closed: { probe.tunnelClosed() })
        }
        return Application(
            router: router, server: .http1WithTunnels(decide: decide),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: onServerRunning,
            logger: quietLogger)
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as it is held: a socket bound to
/// it without listening. (A port found free and released could be taken by another test's
/// server before the test connects.)
final class RefusingPort: @unchecked Sendable {  // closed once, by its owner
    let port: Int
    private var descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard descriptor >= 0, bound else {
            if descriptor >= 0 { Glibc.close(descriptor) }
            throw TestSetupError("cannot bind a port on 127.0.0.1")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }
}

/// Runs `body` with a plain TCP connection to 127.0.0.1:`port`, closed when it returns.
func withRawConnection<T: Sendable>(port: Int, _ body: (inout RawConnection) async throws -> T) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)  // to see half-closes as such
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        var raw = RawConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound)
        return try await body(&raw)
    }
}

/// A TCP connection read as HTTP heads and WebSocket frames, for checks at the byte level.
struct RawConnection {
    struct Head {
        let status: Int
        let fields: [(name: String, value: String)]
        subscript(name: String) -> String? { fields.first { $0.name.lowercased() == name }?.value }
    }

    struct Frame: Equatable {
        let opcode: UInt8
        let payload: [UInt8]
    }

    struct Closed: Error {}

    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var buffer = ByteBuffer()

    func send(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text)) }
    func send(_ bytes: ByteBuffer) async throws { try await outbound.write(bytes) }

    mutating func readHead() async throws -> Head {
        while true {
            let bytes = Array(buffer.readableBytesView)
            if let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) {
                buffer.moveReaderIndex(forwardBy: end + 4)
                var lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                let fields = lines.map { line in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return (name: String(parts[0]), value: parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
                }
                return Head(status: statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0, fields: fields)
            }
            try await fill()
        }
    }

    mutating func readBody(_ head: Head) async throws -> String {
        let length = head["content-length"].flatMap { Int($0) } ?? 0
        while buffer.readableBytes < length { try await fill() }
        return buffer.readString(length: length) ?? ""
    }

    /// The next frame from the server (servers do not mask).
    mutating func readFrame() async throws -> Frame {
        while true {
            var view = buffer
            if let first = view.readInteger(as: UInt8.self), let second = view.readInteger(as: UInt8.self) {
                var length: Int? = Int(second & 0x7F)
                if length == 126 { length = view.readInteger(as: UInt16.self).map(Int.init) }
                if length == 127 { length = view.readInteger(as: UInt64.self).map(Int.init) }
                if let length, let payload = view.readBytes(length: length) {
                    buffer = view
                    return Frame(opcode: first & 0x0F, payload: payload)
                }
            }
            try await fill()
        }
    }

    /// Reads until the peer closes; returns whatever arrived unread.
    mutating func readToEnd() async throws -> ByteBuffer {
        do {
            while true { try await fill() }
        } catch is Closed {
        } catch {
            // a reset ends the connection too
        }
        return buffer
    }

    /// A final, masked client frame.
    static func clientFrame(opcode: UInt8, payload: [UInt8]) -> ByteBuffer {
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        var frame = ByteBuffer()
        frame.writeInteger(0x80 | opcode)
        switch payload.count {
        case ..<126: frame.writeInteger(UInt8(0x80 | payload.count))
        case ...0xFFFF: frame.writeInteger(UInt8(0x80 | 126)); frame.writeInteger(UInt16(payload.count))
        default: frame.writeInteger(UInt8(0x80 | 127)); frame.writeInteger(UInt64(payload.count))
        }
        frame.writeBytes(mask)
        frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return frame
    }

    private mutating func fill() async throws {
        guard var more = try await inbound.next() else { throw Closed() }
        buffer.writeBuffer(&more)
    }
}
