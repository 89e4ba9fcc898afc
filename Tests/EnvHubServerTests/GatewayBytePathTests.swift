import EnvHubRuntime
import HTTPTypes
import NIOCore
import Testing

@testable import EnvHubServer

/// How the gateway's byte path reads heads and bodies: which requests it serves itself, which
/// it leaves to NIO's parser (anything a smuggler could make two parsers read differently),
/// how an app's response head is framed and rewritten, and where a chunked body ends.
@Suite struct GatewayBytePathTests {
    static func scan(_ text: String) -> PlainGatewayRequest.Scan { PlainGatewayRequest.scan(ByteBuffer(string: text)) }

    static func plain(_ text: String) -> PlainGatewayRequest? {
        if case .plain(let request) = scan(text) { return request }
        return nil
    }

    static func isOther(_ text: String) -> Bool {
        if case .other = scan(text) { return true }
        return false
    }

    @Test func aPlainGatewayRequestIsReadWithItsHostBodyLengthAndSession() throws {
        let text = "POST /u/alice/web/api?x=1 HTTP/1.1\r\nHost: hub.example\r\nContent-Length: 5\r\nAccept: text/html\r\n"
            + "Authorization: Bearer abc\r\nX-Thing:  spaced value  \r\nConnection: keep-alive, close\r\n\r\nhello"
        let request = try #require(Self.plain(text))
        #expect(request.request.method == .post)
        #expect(request.request.target == "/u/alice/web/api?x=1")
        #expect(request.request.host == "hub.example")
        #expect(request.request.token == "abc")
        #expect(request.request.wantsHTML)
        #expect(request.contentLength == 5)
        #expect(request.closeAfter)
        #expect(request.headLength == text.utf8.count - 5)
        let cookie = try #require(Self.plain("GET /u/a/b HTTP/1.1\r\nHost: h\r\nCookie: x=1; envhub_session=s3; y=2\r\n\r\n"))
        #expect(cookie.request.token == "s3")
        #expect(!cookie.request.wantsHTML)
    }

    @Test func aHeadIsIncompleteUntilItsEmptyLineArrives() {
        let text = "GET /u/alice/web/ HTTP/1.1\r\nHost: h\r\n\r\n"
        for end in 1..<text.utf8.count {
            let prefix = String(decoding: text.utf8.prefix(end), as: UTF8.self)
            guard case .incomplete = Self.scan(prefix) else {
                Issue.record("\(end) bytes: not incomplete")
                continue
            }
        }
        #expect(Self.plain(text) != nil)
    }

    /// Whatever is not plain goes to NIO's parser, which answers it (or refuses it) as the hub
    /// always has; the byte path never forwards a message it might frame differently.
    @Test(arguments: [
        "GET /api/users HTTP/1.1\r\nHost: h\r\n\r\n",  // not the gateway's
        "GET /ux/a/b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /u/a/b HTTP/1.0\r\nHost: h\r\n\r\n",  // HTTP/1.0
        "GET /u/a/b HTTP/1.1\r\n\r\n",  // no Host
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",  // two
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n",  // space before the colon
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\t\r\n\r\n",  // a tab after the length (NIO refuses it)
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n",  // obs-fold
        "GET /u/a/b HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n",  // bare LF
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n",  // bare CR
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nX-A: a\u{1}b\r\n\r\n",  // a control byte
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nX-A: caf\u{e9}\r\n\r\n",  // obs-text
        "GET /u/a/b HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "POST /u/a/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        "CONNECT /u/a/b HTTP/1.1\r\nHost: h\r\n\r\n",
        "get /u/a/b HTTP/1.1\r\nHost: h\r\n\r\n",  // methods NIO does not know (it refuses them)
        "FETCH /u/a/b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  /u/a/b HTTP/1.1\r\nHost: h\r\n\r\n",  // two spaces
        "GET /u/a/b  HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /u/a/b HTTP/1.1 \r\nHost: h\r\n\r\n",
    ])
    func requestsThatAreNotPlainAreLeftToTheFullParser(_ text: String) {
        #expect(Self.isOther(text), "\(text.debugDescription)")
    }

    @Test func aHeadTooLongForTheBytePathIsLeftToTheFullParser() {
        let long = "GET /u/a/b HTTP/1.1\r\nHost: h\r\nX-Long: " + String(repeating: "a", count: PlainGatewayRequest.maxHeadLength)
        #expect(Self.isOther(long))
    }

    /// The head the app gets: its own Host, one Content-Length, no hub credentials or
    /// hop-by-hop fields, one Cookie field without the session, the X-Forwarded fields.
    @Test func theAppGetsTheHeadByTheForwardingRules() throws {
        let request = try #require(Self.plain(
            "PUT /u/alice/web/x?y=1 HTTP/1.1\r\nHost: hub.example\r\nContent-Length: 3\r\nAuthorization: Bearer t\r\n"
            + "Connection: keep-alive, X-Private\r\nX-Private: p\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\n"
            + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: elsewhere.example\r\n"
            + "Cookie: a=1; envhub_session=s\r\nCookie: b=2\r\nX-A:  1 \r\n\r\n"))
        let head = request.forwardedHead(for: Self.target, clientIP: "10.1.2.3")
        #expect(String(buffer: head) == "PUT /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-A:  1\r\nCookie: a=1; b=2\r\n"
            + "X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: hub.example\r\n"
            + "X-Forwarded-Prefix: /u/alice/web\r\nContent-Length: 3\r\n\r\n")
    }

    /// A client that is a trusted proxy has its X-Forwarded-For list kept, all its fields in
    /// order, its own address added at the end, and its X-Forwarded-Proto and -Host believed
    /// (the last value of each); anyone else's are dropped.
    @Test func aTrustedProxysForwardedFieldsGoOn() throws {
        let request = try #require(Self.plain(
            "GET /u/alice/web/x HTTP/1.1\r\nHost: hub.example\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n"
            + "X-Forwarded-Proto: http, https\r\nX-Forwarded-Host: client.example, proxy.example\r\n"
            + "X-Forwarded-For: 192.0.2.1\r\n\r\n"))
        let trusted = String(buffer: request.forwardedHead(for: Self.target(fromTrustedProxy: true), clientIP: "10.1.2.3"))
        #expect(trusted.contains(
            "\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.2, 192.0.2.1, 10.1.2.3\r\nX-Forwarded-Proto: https\r\n"
                + "X-Forwarded-Host: proxy.example\r\n"), "\(trusted)")
        let untrusted = String(buffer: request.forwardedHead(for: Self.target, clientIP: "10.1.2.3"))
        #expect(untrusted.contains("\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: hub.example\r\n"),
                "\(untrusted)")
        #expect(!untrusted.contains("203.0.113.7") && !untrusted.contains("proxy.example"), "\(untrusted)")
    }

    /// The last value of the lists, over every field, decides; blanks and empty elements do not count.
    @Test func theLastForwardedValueDecides() {
        #expect(ForwardedClaims.last(of: ["https, http"]) == "http")
        #expect(ForwardedClaims.last(of: ["http", " https ,, \t"]) == "https")
        #expect(ForwardedClaims.last(of: ["http", ""]) == "http")
        #expect(ForwardedClaims.last(of: [" , "]) == nil)
        #expect(ForwardedClaims.last(of: []) == nil)
        var claims = ForwardedClaims()
        claims.proto = ["HTTPS"]
        #expect(claims.https)
    }

    /// An Upgrade to another protocol than WebSocket (curl `--http2`) is ignored: the request
    /// stays on the byte path and the app gets it without Upgrade or what Connection names.
    @Test func anUpgradeToAnotherProtocolIsIgnored() throws {
        let request = try #require(Self.plain(
            "GET /u/alice/web/x HTTP/1.1\r\nHost: hub.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            + "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-A: 1\r\n\r\n"))
        let head = String(buffer: request.forwardedHead(for: Self.target, clientIP: "10.1.2.3"))
        #expect(head.hasPrefix("GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-A: 1\r\nX-Forwarded-For: 10.1.2.3\r\n"), "\(head)")
        #expect(Self.isOther("GET /u/a/b HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, WebSocket/13\r\nConnection: Upgrade\r\n\r\n"))
    }

    /// The byte path (which leaves WebSocket handshakes to NIO's parser) and the parser's side
    /// (which tunnels them) agree on what asks for WebSocket, with or without a version.
    @Test func bothPathsAgreeOnWhatAsksForWebSocket() throws {
        for (upgrade, isWebSocket) in [("websocket", true), ("WebSocket", true), ("websocket/13", true),
                                       ("h2c, websocket", true), ("h2c", false), ("websockets", false)] {
            let text = "GET /u/a/b/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: \(upgrade)\r\n\r\n"
            var head = HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/u/a/b/ws")
            head.headerFields[.connection] = "Upgrade"
            head.headerFields[.upgrade] = upgrade
            #expect(WebSocketTunnel.isWebSocketUpgrade(head) == isWebSocket, "\(upgrade)")
            #expect(Self.isOther(text) == isWebSocket, "\(upgrade)")
        }
    }

    /// The forwarding rules read names as a head's bytes, in any case, the same as `String`s.
    @Test func fieldNamesMeetTheSameRulesAsBytesAsAsStrings() {
        let cases: [(String, Bool, ForwardedHeaders.RequestFieldFate)] = [
            ("Accept", false, .forward), ("AUTHORIZATION", false, .drop), ("X-Forwarded-Host", false, .drop),
            ("x-forwarded", false, .forward), ("X-Forwarded-", false, .drop), ("Forwarded", false, .drop), ("Forwarde", false, .forward), ("Connection", false, .drop),
            ("Connection", true, .forward), ("Upgrade", true, .forward), ("Keep-Alive", true, .drop),
            ("X-Private", false, .drop), ("X-Privat", false, .forward), ("Cookie", false, .cookie), ("TE", false, .drop),
            ("A~b", false, .drop), ("A^b", false, .forward),  // only letters differ by case
        ]
        for (name, keepUpgrade, fate) in cases {
            let asBytes = name.utf8.withContiguousStorageIfAvailable {
                ForwardedHeaders.fate(ofRequestField: UnsafeRawBufferPointer($0), connectionOptions: ["x-private", "a~b"], keepUpgrade: keepUpgrade)
            }
            let asString = ForwardedHeaders.fate(ofRequestField: name.lowercased(), connectionOptions: ["x-private", "a~b"], keepUpgrade: keepUpgrade)
            #expect(asBytes == fate && asString == fate, "\(name), keepUpgrade \(keepUpgrade)")
        }
    }

    /// The byte path's hop-by-hop check and the list the HTTPFields path uses name the same fields.
    @Test func hopByHopNamesAreTheSameAsBytes() {
        func isHopByHop(_ name: String) -> Bool {
            name.utf8.withContiguousStorageIfAvailable { ForwardedHeaders.isHopByHop(UnsafeRawBufferPointer($0)) } ?? false
        }
        for name in ForwardedHeaders.hopByHop {
            #expect(isHopByHop(name) && isHopByHop(name.uppercased()), "\(name)")
            #expect(!isHopByHop(String(name.dropLast())) && !isHopByHop(name + "s") && !isHopByHop("x" + name.dropFirst()), "\(name)")
        }
        for name in ["", "t", "content-length", "cookie", "proxy-authorizatio", "keep_alive"] {
            #expect(!isHopByHop(name), "\(name)")
        }
    }

    @Test func anAcceptFieldAsksForHTMLWhereverTextHTMLStands() {
        for accept in ["text/html", "text/html,application/xhtml+xml", "application/json, text/html;q=0.9", "ttext/html"] {
            #expect(Gateway.wantsHTML(accept: accept), "\(accept)")
        }
        for accept in ["", "*/*", "text/htm", "application/json", "text/plain, html", "image/avif,image/webp,*/*;q=0.8"] {
            #expect(!Gateway.wantsHTML(accept: accept), "\(accept)")
        }
    }

    // MARK: the app's responses

    static let target = target(fromTrustedProxy: false)

    static func target(fromTrustedProxy trusted: Bool) -> ProxyTarget {
        ProxyTarget(
            upstream: Endpoint(host: "127.0.0.1", port: 9000), path: "/x?y=1", projectID: "p",
            prefix: "/u/alice/web", prefixStripped: true, clientHost: "hub.example",
            clientAddress: try! SocketAddress(ipAddress: "10.1.2.3", port: 5555), clientIsTrustedProxy: trusted, keepUpgrade: false)
    }

    static func response(_ text: String, head: Bool = false, closeClient: Bool = false) -> UpstreamResponseHead? {
        if case .head(let response) = UpstreamResponseHead.scan(ByteBuffer(string: text), for: target, headRequest: head, closeClient: closeClient) {
            return response
        }
        return nil
    }

    @Test func aResponseHeadIsRewrittenForTheClient() throws {
        let response = try #require(Self.response(
            "HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: a=1; Path=/\r\nConnection: keep-alive, X-Private\r\n"
            + "Keep-Alive: timeout=5\r\nX-Private: secret\r\nContent-Length: 0\r\nX-Kept: yes\r\n\r\n"))
        #expect(response.status == 302)
        #expect(response.framing == .length(0))
        #expect(response.reusable)
        #expect(String(buffer: response.clientHead) == "HTTP/1.1 302 Found\r\nLocation: /u/alice/web/next\r\n"
            + "Set-Cookie: a=1; Path=/u/alice/web/\r\nContent-Length: 0\r\nX-Kept: yes\r\n\r\n")
    }

    /// A head with nothing to change reaches the client as the app sent it; one with a change
    /// is written anew, the lines before the change as they came.
    @Test func aHeadWithNothingToChangePassesAsItCame() throws {
        let plain = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Empty:\r\nContent-Length: 2\r\n\r\n"
        let response = try #require(Self.response(plain))
        #expect(response.asItCame)
        #expect(String(buffer: response.clientHead) == plain)
        let before = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n"
        for (line, forClient) in [
            ("Keep-Alive: timeout=5\r\n", ""),
            ("X-Trailing: 1 \r\n", "X-Trailing: 1\r\n"),
            ("Location: /next\r\n", "Location: /u/alice/web/next\r\n"),
            ("Set-Cookie: a=1; Path=/\r\n", "Set-Cookie: a=1; Path=/u/alice/web/\r\n"),
        ] {
            let response = try #require(Self.response(before + line + "Content-Length: 0\r\n\r\n"))
            #expect(!response.asItCame, "\(line)")
            #expect(String(buffer: response.clientHead) == before + forClient + "Content-Length: 0\r\n\r\n")
        }
        #expect(Self.response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")?.asItCame == false)
        #expect(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", closeClient: true)?.asItCame == false)
    }

    /// What the client is written for an answer that arrives in one read: a head as it came
    /// and the body after it in one write of the bytes read; a rewritten head and the body in
    /// one buffer when the body is small, else the body as it came after it. The bytes after
    /// the answer are the app's, never the client's.
    @Test(arguments: [5, UpstreamResponseHead.roomForBody + 1], [false, true])
    func anAnswerReachesTheClientWholeAndASmallOneInOneWrite(bodyLength: Int, rewritten: Bool) throws {
        let exchange = ByteExchange(
            target: Self.target, head: ByteBuffer(), bodyLength: 0, method: .get, activity: ActivityTracker().common)
        let body = String(repeating: "b", count: bodyLength)
        let dropped = rewritten ? "Keep-Alive: timeout=5\r\n" : ""
        var writes: [String] = []
        let relayed = exchange.relay(
            ByteBuffer(string: "HTTP/1.1 200 OK\r\n\(dropped)Content-Length: \(bodyLength)\r\n\r\n\(body)HTTP/1.1 stray"),
            closeClient: false) { writes.append(String(buffer: $0)) }
        guard case .ended(extraBytes: true) = relayed else { Issue.record("relayed \(relayed)"); return }
        let head = "HTTP/1.1 200 OK\r\nContent-Length: \(bodyLength)\r\n\r\n"
        #expect(writes == (!rewritten || bodyLength <= UpstreamResponseHead.roomForBody ? [head + body] : [head, body]))
    }

    @Test func framingFollowsRFC9112() throws {
        #expect(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")?.framing == .length(12))
        #expect(Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(Self.response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.framing == .chunked)
        #expect(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", head: true)?.framing == .noBody)
        #expect(Self.response("HTTP/1.1 204 No Content\r\n\r\n")?.framing == .noBody)
        #expect(Self.response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")?.framing == .noBody)
        #expect(Self.response("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")?.isInformational == true)
        #expect(Self.response("HTTP/1.1 200 Tr\u{E8}s bien\tOK\r\nContent-Length: 0\r\n\r\n")?.status == 200)  // obs-text, HTAB
        let untilClose = try #require(Self.response("HTTP/1.0 200 OK\r\n\r\n"))
        #expect(untilClose.framing == .untilClose)
        #expect(!untilClose.reusable)
        #expect(String(buffer: untilClose.clientHead) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        #expect(Self.response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n")?.reusable == false)
        #expect(Self.response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").map { String(buffer: $0.clientHead) }
            == "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
        let closing = try #require(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", closeClient: true))
        #expect(String(buffer: closing.clientHead).hasSuffix("Connection: close\r\n\r\n"))
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 200 O\u{01}K\r\nContent-Length: 0\r\n\r\n",  // a control byte in the reason
        "HTTP/1.1 200 O\u{7F}K\r\nContent-Length: 0\r\n\r\n",
        // What NIO's parser would frame by the connection's end, or refuse.
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\t\r\n\r\n",
    ])
    func malformedOrUnexpectedResponsesAreRefused(_ text: String) {
        if case .malformed = UpstreamResponseHead.scan(ByteBuffer(string: text), for: Self.target, headRequest: false, closeClient: false) {
            return
        }
        Issue.record("not refused: \(text.debugDescription)")
    }

    // MARK: chunked bodies

    static let chunked = "5\r\nhello\r\n6;name=value;flag\r\n world\r\nA;q=\"a \\\"b\\\" c\";v=\r\n0123456789\r\n"
        + "0;last\r\nX-Trailer: done\r\nX-Empty:\r\n\r\n"

    @Test func theEndOfAChunkedBodyIsFoundHoweverTheBytesArrive() {
        let bytes = Array((Self.chunked + "NEXT").utf8)
        for split in 1..<bytes.count {
            var scanner = ChunkedBodyScanner()
            var result = bytes[..<split].withUnsafeBytes { scanner.scan($0) }
            var end = split
            if result == .more {
                result = bytes[split...].withUnsafeBytes { scanner.scan($0) }
                if case .ends(let after) = result { end = split + after }
            } else if case .ends(let after) = result {
                end = after
            }
            #expect(end == Self.chunked.utf8.count, "split at \(split): \(result)")
        }
    }

    @Test(arguments: [
        "x\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n", "\r\n", "1234567890123456\r\n", "0\r\nX: 1\n\r\n", "5\r\nhello\r\n0\r\n\n",
        "5;a\nb\r\nhello\r\n", "5;a\u{01}\r\nhello\r\n", "5;a\u{7F}\r\nhello\r\n",  // control bytes in an extension
        "5 ;a\r\n", "5; a\r\n", "5;a =b\r\n", "0 \r\n", "5 junk\r\n", "5;\r\n", "5;a=\"x\u{01}\"\r\n", "5;a=\"x\"y\r\n",  // extensions
        "0\r\n X: 1\r\n\r\n", "0\r\nX : 1\r\n\r\n", "0\r\n: 1\r\n\r\n", "0\r\nX: a\u{7F}\r\n\r\n",  // trailer lines
        "0\r\nContent-Length: 5\r\n\r\n", "0\r\ntransfer-encoding: chunked\r\n\r\n",  // framing fields in trailers
        "0\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",  // a request where the trailers' end should be
    ])
    func malformedChunkedBodiesAreRefused(_ text: String) {
        var scanner = ChunkedBodyScanner()
        let result = Array(text.utf8).withUnsafeBytes { scanner.scan($0) }
        #expect(result == .malformed, "\(text.debugDescription): \(result)")
    }
}
