import EnvHubTestSupport
import Foundation
import NIOCore
import Testing

@testable import EnvHubServer

/// Requests the gateway's byte path lends NIO's parser (the hub's pages and API, gateway
/// requests it does not read itself): which it lends and which it leaves to the parser for
/// good, where it finds their end, and, live, that the connection comes back after each.
@Suite struct ParserTurnTests {
    static func scan(_ text: String) -> ParserTurn.Scan { ParserTurn.scan(ByteBuffer(string: text)) }

    static func turn(_ text: String) -> ParserTurn? {
        if case .turn(let turn) = scan(text) { return turn }
        return nil
    }

    @Test(arguments: [
        "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST /api/auth/login HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n",
        "POST /api/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX-Name: caf\u{e9}\r\n\r\n",
    ])
    func requestsWhoseEndTheBytePathFindsAreLent(_ text: String) {
        #expect(Self.turn(text) != nil, "\(text.debugDescription)")
    }

    @Test(arguments: [
        "GET /healthz HTTP/1.0\r\nHost: h\r\n\r\n",
        "GET /api/chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET /api/chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c, WebSocket/13\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\t\r\n\r\n",  // NIO's parser refuses both
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\nContent-Length: 5\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: h\nContent-Length: 5\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "b", count: PlainGatewayRequest.maxHeadLength))\r\n\r\n",
    ])
    func requestsTheBytePathCouldReadDifferentlyStayWithTheParserForGood(_ text: String) {
        guard case .forGood = Self.scan(text) else {
            Issue.record("lent: \(text.prefix(120).debugDescription)")
            return
        }
    }

    @Test func aHeadIsIncompleteUntilItsEmptyLineArrives() {
        guard case .incomplete = Self.scan("GET /healthz HTTP/1.1\r\nHost: h\r\n") else {
            Issue.record("decided before the head's end")
            return
        }
    }

    /// Where the request ends, counted over two pieces split at every place: the share ends
    /// at the request's last byte, before what follows it.
    @Test(arguments: [
        "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789",
        "POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n",
    ])
    func theRequestsLastByteIsFoundHoweverTheBytesArrive(_ request: String) throws {
        let bytes = Array((request + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n").utf8)
        for split in 1..<bytes.count {
            var turn = try #require(Self.turn(request))
            var counted = 0
            var ended = false
            for piece in [bytes[..<split], bytes[split...]] where !ended && !piece.isEmpty {
                switch piece.withUnsafeBytes({ turn.share(of: $0) }) {
                case .part(let count):
                    #expect(count == piece.count, "split at \(split)")
                    counted += count
                case .last(let count):
                    counted += count
                    ended = true
                case .malformed:
                    Issue.record("malformed, split at \(split)")
                    return
                }
            }
            #expect(ended && counted == request.utf8.count, "split at \(split): \(counted) of \(request.utf8.count)")
        }
    }

    /// An Upgrade to another protocol than WebSocket (curl `--http2`'s `h2c`) is left out of
    /// what the parser reads, which would otherwise stop at the end of the request, and the
    /// request's end is counted in what is left.
    @Test func anUpgradeToAnotherProtocolIsLeftOutOfWhatTheParserReads() throws {
        let request = "POST /api/x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c \r\n"
            + "HTTP2-Settings: AAMA\r\nContent-Length: 3\r\n\r\nabc"
        var turn = try #require(Self.turn(request + "GET /next HTTP/1.1\r\n\r\n"))
        let lent = turn.leavingOutIgnoredLines(of: ByteBuffer(string: request + "GET /next HTTP/1.1\r\n\r\n"))
        let expected = request.replacingOccurrences(of: "Upgrade: h2c \r\n", with: "")
        #expect(String(buffer: lent) == expected + "GET /next HTTP/1.1\r\n\r\n")
        #expect(lent.withUnsafeReadableBytes { turn.share(of: $0) } == .last(expected.utf8.count))
    }

    @Test func aMalformedChunkedBodyIsTold() throws {
        var turn = try #require(Self.turn("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))
        let bytes = Array("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n".utf8)
        #expect(bytes.withUnsafeBytes { turn.share(of: $0) } == .malformed)
    }

    /// A parser standing in for NIO's: reports a request's end when the bytes lent reach
    /// `endsAt` (bytes counted from the turn's start), and keeps what it was lent.
    struct Parser {
        var endsAt: [Int]
        var lent: [Int] = []
        var total = 0

        mutating func read(_ count: Int) -> Int {
            lent.append(count)
            let ends = endsAt.filter { $0 > total && $0 <= total + count }.count
            total += count
            return ends
        }
    }

    /// The request's last byte goes to the parser on its own, and the connection comes back
    /// only when the parser reports the end there and nowhere else.
    @Test func theConnectionComesBackOnlyWhereTheParserEndsTheRequestToo() throws {
        let request = "POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
        let length = request.utf8.count
        let bytes = Array((request + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n").utf8)
        for (endsAt, expected) in [([length], ParserTurn.Lent.read), ([length - 1], .readDifferently), ([length + 1], .readDifferently),
                                   ([length - 10, length], .readDifferently), ([], .readDifferently)] {
            var turn = try #require(Self.turn(request))
            var parser = Parser(endsAt: endsAt)
            let share = bytes.withUnsafeBytes { turn.share(of: $0) }
            #expect(share == .last(length))
            let lent = turn.lend(share) { parser.read($0) }
            #expect(lent == expected, "ends at \(endsAt)")
            #expect(turn.requestRead == (expected == .read), "ends at \(endsAt)")
            if expected == .read { #expect(parser.lent == [length - 1, 1]) }
        }
        // A share the request goes on after: any end reported in it is elsewhere.
        var turn = try #require(Self.turn(request))
        let share = bytes.prefix(length - 3).withUnsafeBytes { turn.share(of: $0) }
        #expect(share == .part(length - 3))
        var agreeing = turn, early = turn
        #expect(agreeing.lend(share) { _ in 0 } == .goesOn)
        #expect(early.lend(share) { _ in 1 } == .readDifferently)
        #expect(turn.lend(.malformed) { _ in 0 } == .readDifferently)
    }

    // MARK: live

    /// `envhub_gateway_parser_handovers_total` by connection, read on a connection of its own
    /// that stays open (a `Connection: close` would itself keep the connection with the parser).
    static func handovers(port: Int) async throws -> (returned: Double, kept: Double) {
        let socket = try RawSocket(port: port)
        socket.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let text = try #require(GatewayConnectionTests.bodies(try await socket.receive { GatewayConnectionTests.bodies($0).count == 1 }).first)
        func value(_ connection: String) throws -> Double {
            try #require(GatewayConnectionTests.metric("envhub_gateway_parser_handovers_total{connection=\"\(connection)\"}", in: text), "\(text)")
        }
        return (try value("returned"), try value("kept"))
    }

    /// A browser's few connections carry the hub's pages and API and the apps' requests alike.
    /// After each request the hub answers (with a body framed either way, or none) or that the
    /// gateway reads through the parser (a chunked upload), the connection comes back to the
    /// byte path: the answers come in order, and the parser keeps no connection.
    @Test func theConnectionComesBackAfterEachRequestLentToTheParser() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let before = try await Self.handovers(port: port)
            let app = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let login = #"{"username": "admin", "password": "\#(TestHub.adminPassword)"}"#
            let json = "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
            let upload = String(repeating: "u", count: 3000)
            let requests: [(head: String, answer: String)] = [
                ("GET /healthz HTTP/1.1\r\n\(app)\r\n", #""status""#),
                ("GET /u/admin/web/echo/1 HTTP/1.1\r\n\(app)\r\n", #""path": "/echo/1""#),
                ("POST /api/auth/login HTTP/1.1\r\n\(json)Content-Length: \(login.utf8.count)\r\n\r\n\(login)", #""token""#),
                ("GET /u/admin/web/echo/2 HTTP/1.1\r\n\(app)\r\n", #""path": "/echo/2""#),
                ("POST /api/auth/login HTTP/1.1\r\n\(json)Transfer-Encoding: chunked\r\n\r\n"
                    + "\(String(login.utf8.count, radix: 16))\r\n\(login)\r\n0\r\n\r\n", #""token""#),
                ("GET /u/admin/web/echo/3 HTTP/1.1\r\n\(app)\r\n", #""path": "/echo/3""#),
                ("POST /u/admin/web/upload HTTP/1.1\r\n\(app)Transfer-Encoding: chunked\r\n\r\n"
                    + "\(String(upload.utf8.count, radix: 16))\r\n\(upload)\r\n0\r\n\r\n", #"{"received": 3000}"#),
                ("GET /u/admin/web/echo/4 HTTP/1.1\r\n\(app)\r\n", #""path": "/echo/4""#),
            ]
            let socket = try RawSocket(port: port)
            socket.send(requests.map(\.head).joined())
            let text = try await socket.receive { GatewayConnectionTests.bodies($0).count >= requests.count }
            let bodies = GatewayConnectionTests.bodies(text)
            #expect(bodies.count == requests.count, "\(text)")
            for (request, body) in zip(requests, bodies) {
                #expect(body.contains(request.answer), "\(request.head.prefix(40)): \(body)")
            }
            #expect(!socket.closedByPeer)
            let after = try await Self.handovers(port: port)
            #expect(after.kept == before.kept)
            // The four lent on the connection, and the first reading of the metrics.
            #expect(after.returned - before.returned == 5)
        }
    }

    /// A WebSocket upgrade after requests lent to the parser and served by the byte path on
    /// the same connection (a browser opening the chat from a page it loaded there) leaves the
    /// connection to the parser for good and switches it: the socket works.
    @Test func aWebSocketOpensOnAConnectionThatWentBackAndForth() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send(GatewayConnectionTests.Opening.hubRequest.text
                + "GET /u/admin/web/echo/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let answers = GatewayConnectionTests.bodies(try await socket.receive { GatewayConnectionTests.bodies($0).count == 2 })
            #expect(answers.count == 2 && answers[1].contains(#""path": "/echo/1""#), "\(answers)")
            socket.openWebSocket(path: "/api/chat", protocol: "chat", headers: ["Authorization: Bearer \(token)"])
            socket.sendWebSocketText(#"{"type": "ping", "ref": "after"}"#)
            let text = try await socket.receive { $0.contains(#""ref":"after""#) }
            #expect(text.contains("HTTP/1.1 101"), "\(text)")
            #expect(text.contains(#""type":"pong""#), "\(text)")
        }
    }

    /// curl `--http2` asks each request to upgrade to h2c. The hub ignores that, as nginx does,
    /// and answers in HTTP/1.1 on its own routes and the gateway's alike; the connection goes
    /// on (NIO's parser, left to read such a request, read nothing more of the connection).
    @Test func anUpgradeToAnotherProtocolIsIgnoredAndTheConnectionGoesOn() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
            let paths = ["/healthz", "/u/admin/web/echo/1", "/healthz", "/u/admin/web/echo/2"]
            let socket = try RawSocket(port: port)
            socket.send(paths.map { "GET \($0) HTTP/1.1\r\n\(fields)" }.joined())
            let text = try await socket.receive { GatewayConnectionTests.bodies($0).count >= paths.count }
            let bodies = GatewayConnectionTests.bodies(text)
            #expect(bodies.count == paths.count && !text.contains("HTTP/1.1 101"), "\(text)")
            for (path, body) in zip(paths, bodies) where path.hasPrefix("/u/") {
                #expect(body.contains(#""path": "\#(path.dropFirst("/u/admin/web".count))""#), "\(body)")
                #expect(!body.contains("h2c") && !body.contains("http2-settings"), "the app got the upgrade: \(body)")
            }
        }
    }
}
