import EnvHubServer
import EnvHubTestSupport
import Foundation
import Testing

/// How the gateway treats connections: HTTP/1.1 order on a client connection shared with
/// the API, apps that drop kept-alive connections, silent apps, `Connection: close`.
@Suite struct GatewayConnectionTests {
    /// The bodies of the responses in `text`, in order, read by their Content-Length.
    static func bodies(_ text: String) -> [String] {
        var bodies: [String] = []
        var rest = Substring(text)
        while let end = rest.range(of: "\r\n\r\n") {
            let head = rest[..<end.lowerBound].lowercased()
            guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                  let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { break }
            let body = rest[end.upperBound...].utf8.prefix(length)
            guard body.count == length else { break }
            bodies.append(String(decoding: body, as: UTF8.self))
            rest = rest[end.upperBound...].dropFirst(String(decoding: body, as: UTF8.self).count)
        }
        return bodies
    }

    /// What a connection carries before the request a test is about, to put it on each path
    /// the gateway's requests take.
    enum Opening: String, CaseIterable, CustomTestStringConvertible {
        /// Nothing: the byte path.
        case none
        /// A hub request the byte path lends NIO's parser; the connection then comes back.
        case hubRequest
        /// A hub request after which NIO's parser keeps the connection for good (a head longer
        /// than the byte path reads, as a browser with large cookies sends): the gateway's
        /// requests that follow go to `GatewayProxyHandler`.
        case parserForGood

        var text: String {
            switch self {
            case .none: ""
            case .hubRequest: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            case .parserForGood: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: \(String(repeating: "p", count: 17 * 1024))\r\n\r\n"
            }
        }

        var testDescription: String { rawValue }
    }

    /// Requests for the app and for the hub's API, sent back to back on one connection
    /// before any answer, are answered in the order they were sent.
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            var requests = ""
            let paths = ["/u/admin/web/echo/1", "/healthz", "/u/admin/web/echo/2", "/u/admin/web/echo/3", "/healthz",
                         "/api/users/admin/projects/web", "/u/admin/web/echo/4"]
            for path in paths {
                requests += "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n"
            }
            socket.send(requests)
            let text = try await socket.receive { Self.bodies($0).count >= paths.count }
            let bodies = Self.bodies(text)
            #expect(bodies.count == paths.count, "\(text)")
            for (path, body) in zip(paths, bodies) {
                if path.hasPrefix("/u/") {
                    #expect(body.contains("\"path\": \"\(path.dropFirst("/u/admin/web".count))\""), "\(path): \(body)")
                } else if path == "/healthz" {
                    #expect(body.contains("\"status\""), "\(path): \(body)")
                } else {
                    #expect(body.contains("\"name\":\"web\""), "\(path): \(body)")
                }
            }
        }
    }

    /// A connection remembers the token and route its last request found (`Gateway.Recall`),
    /// so its next request need not look them up: a stop and a logout, made on other
    /// connections, must still reach the very next request on this one.
    @Test func aKeptConnectionSeesStopsAndLogouts() async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            let socket = try RawSocket(port: port)
            var answered = 0
            func get(_ path: String) async throws -> String {
                socket.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
                answered += 1
                let count = answered
                return try #require(Self.bodies(try await socket.receive { Self.bodies($0).count >= count }).last)
            }
            #expect(try await get("/u/admin/web/echo/1").contains("\"path\": \"/echo/1\""))
            #expect(try await get("/u/admin/web/echo/2").contains("\"path\": \"/echo/2\""))

            #expect(try await hub.request(.post, "/api/users/admin/projects/web/deactivate", token: token).status == .accepted)
            try await TestHub.eventually("the project to be inactive") {
                try await hub.request(.get, "/api/users/admin/projects/web", token: token).object["state"] as? String == "inactive"
            }
            #expect(try await get("/u/admin/web/echo/3").contains("environment_not_running"))

            #expect(try await hub.request(.post, "/api/auth/logout", token: token).status == .noContent)
            #expect(try await get("/u/admin/web/echo/4").contains("unauthenticated"))
        }
    }

    /// An app that wrongly sends a body with an answer that has none (to HEAD; a 204 that
    /// announces one), a moment after the head: the next request, on the same client
    /// connection, still gets its own answer (its app connection is a new one), on both paths.
    /// The 204 reaches the client without the length it announced.
    @Test(arguments: [Opening.none, .parserForGood], ["HEAD /u/admin/web/head-with-body", "GET /u/admin/web/no-content-with-body"])
    func aBodyAfterABodilessAnswerNeverReachesTheNextRequest(after opening: Opening, request: String) async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send(opening.text + "\(request) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let heads = opening == .none ? 1 : 2
            let answer = try await socket.receive { $0.components(separatedBy: "HTTP/1.1 ").count - 1 == heads && $0.hasSuffix("\r\n\r\n") }
            if request.contains("no-content") {
                #expect(!answer.lowercased().contains("content-length: 5"), "RFC 9110 §8.6: no Content-Length on a 204: \(answer)")
            }
            socket.send("GET /u/admin/web/echo/next HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let text = try await socket.receive { $0.contains("\"path\": \"/echo/next\"") || $0.contains("bad_gateway") }
            #expect(text.contains("\"path\": \"/echo/next\""), "\(text)")
            #expect(!text.contains("stray"))
        }
    }

    /// A pooled connection to the app that the app closes instead of answering: an idempotent
    /// request is sent once more, on a new connection (the app may have closed the first as it
    /// went idle); any other is not, since the app may have acted on it before closing (as
    /// nginx and Go's proxy do). Either way the client gets a 502 once the app hangs up again.
    @Test(arguments: [Opening.none, .parserForGood])
    func onlyIdempotentRequestsAreSentAgain(after opening: Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            for (method, times) in [("GET", 2), ("POST", 1), ("DELETE", 2), ("PATCH", 1)] {
                // The first request leaves its app connection in the pool of this client's event loop.
                let socket = try RawSocket(port: port)
                socket.send(opening.text + "GET /u/admin/web/health HTTP/1.1\r\n\(fields)\r\n"
                    + "\(method) /u/admin/web/hang-up?method=\(method) HTTP/1.1\r\n\(fields)Content-Length: 0\r\nConnection: close\r\n\r\n")
                let text = try await socket.receive { _ in false }  // until the hub closes
                #expect(text.contains("healthy") && text.contains("HTTP/1.1 502 "), "\(method): \(text)")
                let seen = try await rawHTTPExchange(
                    port: port, "GET /u/admin/web/seen?target=/hang-up?method=\(method) HTTP/1.1\r\n\(fields)Connection: close\r\n\r\n")
                #expect(seen.hasSuffix("{\"count\": \(times)}"), "\(method) reached the app other than \(times) times: \(seen)")
            }
        }
    }

    /// An app may close a kept-alive connection after any response; the next request
    /// through the gateway still succeeds.
    @Test func anAppThatDropsConnectionsNeverCausesA502() async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, _ in
            for round in 0..<20 {
                let dropped = try await hub.request(.get, "/u/admin/web/drop", token: token)
                #expect(dropped.status == .ok && dropped.text == "dropped", "round \(round): \(dropped.status)")
                let next = try await hub.request(.get, "/u/admin/web/echo", token: token)
                #expect(next.status == .ok, "round \(round): \(next.status) \(next.text)")
            }
        }
    }

    /// A client connection that keeps the hub waiting longer than the client idle timeout is
    /// closed: kept alive after an answer (on the byte path, after a request lent to NIO's
    /// parser, and on a connection the parser keeps), stopped in the middle of a head, or
    /// never used.
    @Test func idleClientConnectionsAreClosed() async throws {
        try await Self.withActiveProjectClosingIdleClients { token, port in
            let openings = [
                "GET /u/admin/web/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n",
                Opening.hubRequest.text,
                Opening.parserForGood.text,
                "GET /u/admin/web/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                "",
            ]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for opening in openings {
                    group.addTask {
                        let socket = try RawSocket(port: port)
                        if !opening.isEmpty { socket.send(opening) }
                        let started = ContinuousClock.now
                        let text = try await socket.receive { _ in false }  // until the hub closes, or 10 s of silence
                        #expect(socket.closedByPeer, "\(opening.debugDescription) left open: \(text)")
                        #expect(ContinuousClock.now - started < .seconds(8))
                        if opening.hasSuffix("\r\n\r\n") {
                            #expect(text.hasPrefix("HTTP/1.1 200") && Self.bodies(text).count == 1, "\(text)")
                        } else {
                            #expect(text.isEmpty, "\(text)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// A head must arrive whole within the client idle timeout of its first bytes, as nginx's
    /// `client_header_timeout` has it: a client that trickles one in (slowloris), a line every
    /// 0.2 s against a 1 s timeout, is disconnected before its head is done, on every path.
    @Test func aHeadTrickledInIsCutOffAfterTheIdleTimeout() async throws {
        try await Self.withActiveProjectClosingIdleClients { token, port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for opening in Opening.allCases {
                    group.addTask {
                        let socket = try RawSocket(port: port)
                        if opening != .none {
                            socket.send(opening.text)
                            _ = try await socket.receive { Self.bodies($0).count == 1 }
                        }
                        let lines = ["GET /u/admin/web/health HTTP/1.1\r\n", "Host: 127.0.0.1\r\n", "Authorization: Bearer \(token)\r\n"]
                            + (0..<40).map { "X-Trickle-\($0): 1\r\n" } + ["\r\n"]  // 8 s in all
                        let started = ContinuousClock.now
                        var refused = false
                        for line in lines {
                            refused = socket.sendAll(Array(line.utf8)).error != nil
                            if refused { break }
                            try await Task.sleep(for: .milliseconds(200))
                        }
                        let text = try await socket.receive { _ in false }  // what is left, until the end
                        #expect(refused, "\(opening): the whole head went in: \(text)")
                        #expect(ContinuousClock.now - started < .seconds(6), "\(opening)")
                        #expect(!text.contains("healthy"), "\(opening): \(text)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Waiting for the app is not the client's idleness: answers slower than the client idle
    /// timeout arrive, on every path, and a quiet chat socket stays open.
    @Test func slowAnswersAndQuietSocketsOutliveTheClientIdleTimeout() async throws {
        try await Self.withActiveProjectClosingIdleClients { token, port in
            // All at once, so that nothing the test process does (or waits for) can make the
            // client late: a slow answer after each opening, on one connection.
            let socket = try RawSocket(port: port)
            let slow = "GET /u/admin/web/slow?s=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n"
            socket.send(Opening.allCases.map { $0.text + slow }.joined())
            let bodies = Self.bodies(try await socket.receive { Self.bodies($0).count >= 5 })
            #expect(bodies.count == 5 && bodies[0] == "slow" && bodies[2] == "slow" && bodies[4] == "slow", "\(bodies)")
            #expect(!socket.closedByPeer)

            let chat = try RawSocket(port: port)
            chat.openWebSocket(path: "/api/chat", protocol: "chat", headers: ["Authorization: Bearer \(token)"])
            chat.sendWebSocketText(#"{"type": "ping", "ref": "before"}"#)
            #expect(try await chat.receive { $0.contains(#""ref":"before""#) }.hasPrefix("HTTP/1.1 101"))
            try await Task.sleep(for: .seconds(2))  // quiet for twice the client idle timeout
            chat.sendWebSocketText(#"{"type": "ping", "ref": "after"}"#)
            #expect(try await chat.receive { $0.contains(#""ref":"after""#) }.contains(#""type":"pong""#))
            #expect(!chat.closedByPeer)
        }
    }

    /// An upload the app stops reading for longer than the client idle timeout is not the
    /// client's idleness: held back, it waits and then goes through, on every path.
    @Test func uploadsHeldBackByTheAppOutliveTheClientIdleTimeout() async throws {
        try await Self.withActiveProjectClosingIdleClients { token, port in
            let size = 64 << 20  // more than the kernel's buffers on the way hold
            let head = "POST /u/admin/web/upload?pause=3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Length: \(size)\r\n\r\n"
            for upload in try await Self.uploadOnEveryPath(head, bodySize: size, port: port) {
                #expect(upload.sent.written == upload.length, """
                    \(upload.opening): \(upload.sent.written) of \(upload.length) bytes sent (\(upload.sent.error ?? "")) after \
                    \(upload.took), closed by the hub: \(upload.closedByPeer): \(upload.answer)
                    """)
                #expect(upload.answer.contains(#"{"received": \#(size)}"#), "\(upload.opening): \(upload.answer)")
            }
        }
    }

    /// An upload the app reads slowly for longer than the gateway's idle timeout, answering
    /// only once it has all of it, goes through: an app taking the request is not an idle app
    /// (nginx's send timeout), on every path.
    @Test func uploadsTheAppReadsSlowlyOutliveTheGatewayIdleTimeout() async throws {
        try await GatewayTests.withActiveProject("probe", configure: { $0.gatewayIdleTimeout = .seconds(3) }) { _, token, port in
            // Read 1 MiB every 50 ms, so about 5 s in all; what the kernel's buffers on the way
            // hold when the gateway has sent the last byte is read well within the 3 s.
            let size = 96 << 20
            let head = "POST /u/admin/web/upload?every=0.05 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Length: \(size)\r\n\r\n"
            for upload in try await Self.uploadOnEveryPath(head, bodySize: size, port: port, timeoutSeconds: 30) {
                #expect(upload.sent.written == upload.length, "\(upload.opening): \(upload.sent.written) of \(upload.length) bytes sent")
                #expect(upload.answer.contains(#"{"received": \#(size)}"#), "\(upload.opening) after \(upload.took): \(upload.answer)")
                #expect(upload.took > .seconds(3), "the app read for longer than the idle timeout")
            }
        }
    }

    /// One upload of `uploadOnEveryPath`: what was sent, what came back, how long it took.
    struct Upload {
        let opening: Opening
        let sent: (written: Int, error: String?)
        /// All the bytes the connection had to send.
        let length: Int
        let answer: String
        let took: Duration
        let closedByPeer: Bool
    }

    /// Sends `head` and a body of `bodySize` bytes at the same time on a connection after each
    /// opening; returns each once its answer (the app's, or the gateway's 504) is in.
    static func uploadOnEveryPath(_ head: String, bodySize: Int, port: Int, timeoutSeconds: Int = 10) async throws -> [Upload] {
        try await withThrowingTaskGroup(of: Upload.self) { group in
            for opening in Opening.allCases {
                group.addTask {
                    // Made before connecting: on a loaded machine making it can take longer than a
                    // client idle timeout, which the hub would rightly take for an idle client.
                    let bytes = Array((opening.text + head).utf8) + [UInt8](repeating: 0x78, count: bodySize)
                    let socket = try RawSocket(port: port, timeoutSeconds: timeoutSeconds)
                    let started = ContinuousClock.now
                    let sent = try await offThePool { socket.sendAll(bytes) }
                    let answer = try await socket.receive { $0.contains(#""received""#) || $0.contains("gateway_timeout") }
                    return Upload(
                        opening: opening, sent: sent, length: bytes.count, answer: answer,
                        took: ContinuousClock.now - started, closedByPeer: socket.closedByPeer)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// A client that asks `Expect: 100-continue` (curl does for bodies over 1 KiB) gets one
    /// 100 Continue before it sends the body, then the answer: the app's on the gateway (on the
    /// byte path, after a hub request and on a connection NIO's parser keeps), the hub's own
    /// on its routes. The body is not held back waiting for a 100 that never comes.
    @Test func anExpectContinueUploadGetsOneContinue() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let body = String(repeating: "z", count: 100_000)
            // /echo shows the fields the app got: `Expect` among them, so the 100 was the app's.
            let upload = "POST /u/admin/web/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Expect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            let appAnswered = #""received": 100000, "headers": {"#
            let login = #"{"username": "admin", "password": "\#(TestHub.adminPassword)"}"#
            let hubRoute = "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Expect: 100-continue\r\nContent-Length: \(login.utf8.count)\r\n\r\n"
            let cases = [
                (name: "gateway", opening: "", head: upload, body: body, answered: appAnswered),
                (name: "gateway, after a hub request", opening: Opening.hubRequest.text, head: upload, body: body, answered: appAnswered),
                (name: "gateway, the parser's connection", opening: Opening.parserForGood.text, head: upload, body: body,
                 answered: appAnswered),
                (name: "hub route", opening: "", head: hubRoute, body: login, answered: #""token""#),
            ]
            for item in cases {
                let socket = try RawSocket(port: port)
                if !item.opening.isEmpty {
                    socket.send(item.opening)
                    _ = try await socket.receive { Self.bodies($0).count == 1 }
                }
                socket.send(item.head)
                let continued = try await socket.receive { $0.contains("HTTP/1.1 100 Continue\r\n") }
                #expect(continued.contains("HTTP/1.1 100 Continue\r\n"), "\(item.name): \(continued)")
                #expect(!continued.contains(item.answered), "\(item.name): answered before the body")
                socket.send(item.body)
                let answer = try await socket.receive { $0.contains(item.answered) }
                #expect(answer.contains(item.answered), "\(item.name): \(answer)")
                #expect(answer.components(separatedBy: "100 Continue").count == 2, "\(item.name): one 100 Continue: \(answer)")
                if item.head == upload { #expect(answer.contains(#""expect": "100-continue""#), "\(item.name): \(answer)") }
            }
        }
    }

    /// A client that waits for 100 Continue before sending a body larger than any of the
    /// hub's routes takes (1 MiB) gets 413 at once instead, and is spared the upload; the
    /// connection then closes, whichever path the connection was on.
    @Test(arguments: Opening.allCases) func anUploadTooLargeForTheHubIsRefusedBeforeItIsSent(after opening: Opening) async throws {
        try await TestHub.run(live: true) { hub in
            let socket = try RawSocket(port: try #require(hub.client.port))
            socket.send(opening.text + "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Expect: 100-continue\r\nContent-Length: \((1 << 20) + 1)\r\n\r\n")
            let text = try await socket.receive { _ in false }  // until the hub closes
            #expect(!text.contains("100 Continue"), "\(text)")
            let answer = text.components(separatedBy: "HTTP/1.1 ").last ?? ""
            #expect(answer.hasPrefix("413 ") && answer.contains(#""code":"body_too_large""#), "\(text)")
            #expect(socket.closedByPeer, "\(text)")
        }
    }

    /// An HTTP/1.0 client (ApacheBench, old scripts) gets its answer in HTTP/1.0, ended by the
    /// end of the connection when it has no length (never chunked), then the connection
    /// closes: such a client reads until it does. For the gateway and the hub's own routes.
    @Test func anHTTP10ClientGetsAnHTTP10AnswerAndTheConnectionsEnd() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            for (path, body) in [("/u/admin/web/health", "healthy"), ("/u/admin/web/chunked", "one two three"), ("/healthz", "ok")] {
                let socket = try RawSocket(port: port)
                socket.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
                let answer = try await socket.receive { _ in false }  // until the hub closes (or 10 s pass)
                #expect(answer.hasPrefix("HTTP/1.0 200 "), "\(path): \(answer)")
                #expect(!answer.lowercased().contains("transfer-encoding"), "\(path): \(answer)")
                #expect(answer.contains(body), "\(path): \(answer)")
                #expect(socket.closedByPeer, "\(path): the connection stayed open after \(answer)")
            }
        }
    }

    /// `GatewayTests.withActiveProject` on a hub that closes idle client connections after
    /// 1 s, its setup requests each on a connection of its own, written as soon as it is
    /// open. (The test client keeps one connection between requests: on a loaded machine a
    /// pause between two of them can outlast the timeout, and a request sent as the hub
    /// closes the connection is lost.)
    static func withActiveProjectClosingIdleClients(_ body: @escaping @Sendable (_ token: String, _ port: Int) async throws -> Void) async throws {
        let directory = try TestHub.templateDirectory("probe", GatewayTests.appTemplate)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: {
            $0.templatesDirectory = directory.path
            $0.clientIdleTimeout = .seconds(1)
        }, live: true) { hub in
            let port = try #require(hub.client.port)
            func call(_ method: String, _ path: String, token: String? = nil, json: String = "") async throws -> [String: Any] {
                let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
                let answer = try await rawHTTPExchange(port: port, "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(authorization)"
                    + "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\nConnection: close\r\n\r\n\(json)")
                let body = try #require(answer.range(of: "\r\n\r\n")).upperBound
                return try #require(try JSONSerialization.jsonObject(with: Data(answer[body...].utf8)) as? [String: Any], "\(answer)")
            }
            let login = try await call("POST", "/api/auth/login", json: #"{"username": "admin", "password": "\#(TestHub.adminPassword)"}"#)
            let token = try #require(login["token"] as? String)
            _ = try await call("POST", "/api/users/admin/projects", token: token, json: #"{"name": "web", "template": "probe"}"#)
            _ = try await call("POST", "/api/users/admin/projects/web/activate", token: token)
            _ = try await waitFor("the project to be active") {
                let project = try await call("GET", "/api/users/admin/projects/web", token: token)
                if project["state"] as? String == "failed" { throw TestSetupError("the environment failed: \(project)") }
                return project["state"] as? String == "active" ? true : nil
            }
            try await body(token, port)
        }
    }

    /// An app that sends nothing for longer than the gateway's idle timeout gets its
    /// request abandoned with a 504 JSON answer.
    @Test func aSilentAppGets504AfterTheIdleTimeout() async throws {
        try await GatewayTests.withActiveProject("probe", configure: { $0.gatewayIdleTimeout = .seconds(1) }) { hub, token, _ in
            let slow = try await hub.request(.get, "/u/admin/web/slow?s=3", token: token)
            #expect(slow.status == .gatewayTimeout)
            #expect(slow.errorCode == "gateway_timeout")
            // The app still answers what it answers at once (a slower follow-up could outlast
            // the 1 s timeout on a stalled machine).
            #expect(try await hub.request(.get, "/u/admin/web/health", token: token).status == .ok)
        }
    }

    /// A client that asks to close in another spelling than `close` has its connection closed
    /// after the answer on the hub's own routes too (Hummingbird compares the exact value).
    @Test func aCloseInAnySpellingClosesTheConnection() async throws {
        try await GatewayTests.withActiveProject("probe") { _, _, port in
            for connection in ["Close", "keep-alive, close"] {
                let socket = try RawSocket(port: port)
                socket.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: \(connection)\r\n\r\n")
                let answer = try await socket.receive { _ in false }  // until the hub closes (or 10 s pass)
                #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(connection): \(answer)")
                #expect(socket.closedByPeer, "\(connection): the connection stayed open after \(answer)")
            }
        }
    }

    /// A connection to an app that waits in the pool for longer than the gateway's idle
    /// timeout is closed, and the next request opens a new one.
    @Test func aPooledAppConnectionClosesAfterTheIdleTimeout() async throws {
        // 3 s: the checks right after an answer must come well within it on a loaded machine.
        try await GatewayTests.withActiveProject("probe", configure: { $0.gatewayIdleTimeout = .seconds(3) }) { _, token, port in
            let socket = try RawSocket(port: port)
            var answered = 0
            /// The app's port and the gateway's end of the connection the request came on.
            func peer() async throws -> (app: Int, gateway: Int) {
                socket.send("GET /u/admin/web/peer HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
                answered += 1
                let count = answered
                return try Self.peer(in: try await socket.receive { Self.bodies($0).count == count })
            }
            let first = try await peer()
            #expect(try Self.isEstablished(from: first.gateway, to: first.app))
            #expect(try await peer().gateway == first.gateway, "the second request reuses the pooled connection")
            _ = try await waitFor("the pooled connection to close", timeout: .seconds(15)) {
                try Self.isEstablished(from: first.gateway, to: first.app) ? nil : true
            }
            #expect(try await peer().gateway != first.gateway)
        }
    }

    /// A connection to an app waits in the pool for the keep-alive timeout, not the idle
    /// timeout; an exchange in which the app is silent for longer than the keep-alive timeout
    /// (but not the idle timeout) is not cut short by it, and the connection it went over
    /// still closes on time once it waits in the pool.
    @Test func aPooledAppConnectionClosesAfterTheKeepAliveTimeout() async throws {
        try await GatewayTests.withActiveProject("probe", configure: {
            $0.gatewayIdleTimeout = .seconds(60)
            $0.gatewayKeepAliveTimeout = .seconds(3)  // as above: well beyond the checks right after an answer
        }) { _, token, port in
            let socket = try RawSocket(port: port)
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n"
            socket.send("GET /u/admin/web/peer HTTP/1.1\r\n\(fields)")
            let (app, gateway) = try Self.peer(in: try await socket.receive { Self.bodies($0).count == 1 })
            #expect(try Self.isEstablished(from: gateway, to: app))
            // Over the same connection to the app, unless it closed meanwhile: the app is
            // silent through a check of the keep-alive timeout and beyond it.
            socket.send("GET /u/admin/web/slow?s=5 HTTP/1.1\r\n\(fields)")
            let slow = try await socket.receive { Self.bodies($0).count == 2 }
            #expect(slow.components(separatedBy: "HTTP/1.1 ").last?.hasPrefix("200 ") == true,
                    "an exchange was cut short by the keep-alive timeout: \(slow)")
            _ = try await waitFor("the pooled connection to close", timeout: .seconds(20)) {
                try Self.isEstablished(from: gateway, to: app) ? nil : true
            }
        }
    }

    /// The app's port and the gateway's end of the connection, from the last answer of the test
    /// app's `/peer` in `text`.
    static func peer(in text: String) throws -> (app: Int, gateway: Int) {
        let body = try #require(bodies(text).last, "\(text)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Int], "\(body)")
        return (try #require(json["port"]), try #require(json["peer"]))
    }

    /// Whether a TCP connection on 127.0.0.1 from local port `from` to port `to` is
    /// established, as the kernel's table (/proc/net/tcp) says.
    static func isEstablished(from: Int, to: Int) throws -> Bool {
        // Read to the end: one read of a /proc file gives a page (as `String(contentsOfFile:)` does).
        let table = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp")).readToEnd() ?? Data(), as: UTF8.self)
        let local = String(format: ":%04X", from), remote = String(format: ":%04X", to)
        return table.split(separator: "\n").dropFirst().contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(local) && fields[2].hasSuffix(remote) && fields[3] == "01"
        }
    }

    /// A request the app works on silently for longer than the idle timeout is use for as
    /// long as it is open: the culler leaves the environment alone until the answer is out,
    /// then stops it once it is unused.
    ///
    /// The request must reach the gateway within the idle timeout of the start. Twice (once in
    /// CI) the test process stalled longer than that, under the full suite's load, and the
    /// culler rightly stopped the unused environment first: the request got the gateway's 503
    /// and nothing was ever in flight. Such a run is started again (twice at most), and only
    /// when the timeout had really passed since the start: a culler that stopped an
    /// environment sooner, or one that stopped it under an open request (the request would
    /// then fail at the app, not get the 503), still fails the test.
    @Test func aSilentRequestInFlightKeepsTheIdleCullerAway() async throws {
        try await GatewayTests.withActiveProject("probe", configure: {
            $0.idleTimeout = GatewayTests.cullerTimeout
            $0.healthCheckInterval = .milliseconds(100)
        }) { hub, token, _ in
            var project = try #require(try await hub.adminProject("web"))
            let silence = (GatewayTests.cullerTimeout * 1.5).components.seconds  // the test client gives up after 20 s
            var slow = try await hub.request(.get, "/u/admin/web/slow?s=\(silence)", token: token)
            for _ in 1...2 where slow.status == .serviceUnavailable && slow.errorCode == "environment_not_running"
                && Date().timeIntervalSince(project.idleSince) >= TimeInterval(GatewayTests.cullerTimeout.components.seconds) {
                let path = "/api/users/admin/projects/web"
                _ = try await LifecycleTests.waitForState(hub, token, "inactive", path: path)
                #expect(try await hub.request(.post, "\(path)/activate", token: token).status == .accepted)
                _ = try await LifecycleTests.waitForState(hub, token, "active", path: path)
                project = try #require(try await hub.adminProject("web"))
                slow = try await hub.request(.get, "/u/admin/web/slow?s=\(silence)", token: token)
            }
            #expect(slow.status == .ok && slow.text == "slow", "\(slow.status) \(slow.text)")
            #expect(try await hub.hub.store.project(id: project.id)?.state == .active)
            try await waitFor("the environment to be stopped once unused") {
                try await hub.hub.store.project(id: project.id)?.state == .inactive ? true : nil
            }
        }
    }

    /// /metrics shows a gateway request while the app works on it, and no longer once it
    /// is answered.
    @Test func theMetricsCountGatewayExchangesInProgress() async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            #expect(try await Self.openExchanges(hub) == 0)
            let socket = try RawSocket(port: port)
            socket.send("GET /u/admin/web/slow?s=5 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            _ = try await waitFor("the slow request to show in the metrics") {
                try await Self.openExchanges(hub) == 1 ? true : nil
            }
            #expect(try await socket.receive { $0.hasSuffix("slow") }.hasPrefix("HTTP/1.1 200"))
            _ = try await waitFor("the answered request to leave the metrics") {
                try await Self.openExchanges(hub) == 0 ? true : nil
            }
        }
    }

    /// A client that goes away while the app works on its request ends the exchange, on every
    /// path, as nginx, Envoy and Go's reverse proxy do: the environment no longer counts as
    /// in use because of it, and the app's connection is closed rather than left to answer.
    @Test(arguments: Opening.allCases) func aClientThatGoesAwayEndsItsExchange(after opening: Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            let socket = try RawSocket(port: port)
            if opening != .none {
                socket.send(opening.text)
                _ = try await socket.receive { Self.bodies($0).count == 1 }
            }
            socket.send("GET /u/admin/web/slow?s=60 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            _ = try await waitFor("the slow request to show in the metrics") {
                try await Self.openExchanges(hub) == 1 ? true : nil
            }
            socket.close()
            _ = try await waitFor("the abandoned request to leave the metrics", timeout: .seconds(10)) {
                try await Self.openExchanges(hub) == 0 ? true : nil
            }
        }
    }

    /// `envhub_gateway_open_exchanges` from /metrics.
    /// Gateway requests are timed in `envhub_http_request_duration_seconds` by method and
    /// status, on both paths, each request once, whether or not the one before it on the
    /// connection had the same method and status.
    @Test(arguments: [Opening.none, .parserForGood]) func gatewayRequestsAreTimedByMethodAndStatus(after opening: Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            func count(_ method: String, _ status: Int) async throws -> Double {
                let name = #"envhub_http_request_duration_seconds_count{route="/u/:user/:project/**",method="\#(method)",status="\#(status)"}"#
                return Self.metric(name, in: try await hub.request(.get, "/metrics").text) ?? 0
            }
            let before = (get: try await count("GET", 200), missing: try await count("GET", 404), post: try await count("POST", 200))
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let socket = try RawSocket(port: port)
            socket.send(opening.text + ["GET /u/admin/web/health", "GET /u/admin/web/health", "GET /u/admin/web/missing",
                                        "POST /u/admin/web/upload", "GET /u/admin/web/health"].map {
                "\($0) HTTP/1.1\r\n\(fields)Content-Length: 0\r\n\r\n"
            }.joined())
            let answers = opening == .none ? 5 : 6
            let text = try await socket.receive { Self.bodies($0).count == answers }
            #expect(Self.bodies(text).count == answers, "\(text)")
            #expect(try await count("GET", 200) - before.get == 3)
            #expect(try await count("GET", 404) - before.missing == 1)
            #expect(try await count("POST", 200) - before.post == 1)
        }
    }

    static func openExchanges(_ hub: TestHub) async throws -> Double? {
        metric("envhub_gateway_open_exchanges", in: try await hub.request(.get, "/metrics").text)
    }

    /// The value of the sample `name` (with its labels, if it has any) in the Prometheus text `text`.
    static func metric(_ name: String, in text: String) -> Double? {
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.dropFirst(name.count + 1)) }
    }

    /// A WebSocket the hub refuses (an unknown project, the chat without a session) is answered,
    /// with `Connection: close`, and the connection ends: NIO's parser reads nothing after a
    /// request to switch protocols, so a request sent after it would wait for the idle timeout.
    @Test func aRefusedWebSocketEndsItsConnection() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            for (path, status, headers) in [("/u/admin/nothing/socket", "404", ["Authorization: Bearer \(token)"]), ("/api/chat", "401", [])] {
                let socket = try RawSocket(port: port)
                socket.openWebSocket(path: path, protocol: "chat", headers: headers)
                socket.send(Opening.hubRequest.text)
                let started = ContinuousClock.now
                let text = try await socket.receive { _ in false }  // until the hub closes (or 10 s pass)
                #expect(text.hasPrefix("HTTP/1.1 \(status) ") && text.lowercased().contains("\r\nconnection: close\r\n"), "\(path): \(text)")
                #expect(socket.closedByPeer && ContinuousClock.now - started < .seconds(5), "\(path): left open")
            }
        }
    }

    /// A WebSocket handshake with a body is refused at once (400), without asking the app: the
    /// tunnel sends the app the head alone, and an app that read the announced body would wait.
    @Test func aWebSocketHandshakeWithABodyIsRefused() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            for framing in ["Content-Length: 5", "Transfer-Encoding: chunked"] {
                let socket = try RawSocket(port: port)
                socket.openWebSocket(path: "/u/admin/web/echo", protocol: "chat", headers: ["Authorization: Bearer \(token)", framing])
                socket.send(framing.hasPrefix("Content") ? "hello" : "5\r\nhello\r\n0\r\n\r\n")
                let started = ContinuousClock.now
                let text = try await socket.receive { _ in false }  // until the hub closes
                #expect(text.hasPrefix("HTTP/1.1 400 ") && text.contains(#""code":"bad_request""#), "\(framing): \(text)")
                #expect(socket.closedByPeer && ContinuousClock.now - started < .seconds(5), "\(framing): left open")
            }
        }
    }

    /// An app that answers a WebSocket handshake without switching protocols has its answer
    /// passed on as any other (its status, fields by the gateway's rules, body), with
    /// `Connection: close`, and the connection ends.
    @Test func anAppsAnswerInsteadOfA101IsPassedOn() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            for (path, expected) in [("/u/admin/web/echo/socket", #""path": "/echo/socket""#), ("/u/admin/web/redirect", "\r\nLocation: /u/admin/web/target\r\n")] {
                let socket = try RawSocket(port: port)
                socket.openWebSocket(path: path, protocol: "chat", headers: ["Authorization: Bearer \(token)"])
                let text = try await socket.receive { _ in false }  // until the hub closes
                let status = path.hasSuffix("redirect") ? "302" : "200"
                #expect(text.hasPrefix("HTTP/1.1 \(status) ") && text.lowercased().contains("\r\nconnection: close\r\n"), "\(path): \(text)")
                #expect(text.contains(expected), "\(path): \(text)")
                #expect(socket.closedByPeer, "\(path): left open")
            }
        }
    }

    /// `Connection: close` from the client: the hub answers, then closes the connection.
    @Test func connectionCloseIsHonoured() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send("GET /u/admin/web/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n")
            // Read until the hub closes; a kept-alive connection would time out here instead.
            let started = ContinuousClock.now
            let text = try await socket.receive { _ in false }
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(Self.bodies(text).count == 1)
        }
    }

    /// A chunked answer passes whole, trailer included, and the next requests on the
    /// connection are answered after it (HEAD without a body); an answer without a length
    /// ends with the connection, which the client is told.
    @Test func chunkedAndUnframedAnswersPassWhole() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let socket = try RawSocket(port: port)
            socket.send("GET /u/admin/web/chunked HTTP/1.1\r\n\(fields)\r\nHEAD /u/admin/web/bytes?n=100 HTTP/1.1\r\n\(fields)\r\n"
                + "GET /u/admin/web/echo/after HTTP/1.1\r\n\(fields)\r\n")
            let text = try await socket.receive { $0.contains("/echo/after") && $0.hasSuffix("}") }
            let answers = text.components(separatedBy: "HTTP/1.1 200 OK\r\n")
            #expect(answers.count == 4, "\(text)")
            #expect(answers[1].contains("Transfer-Encoding: chunked\r\n"), "\(text)")
            #expect(answers[1].hasSuffix("\r\n\r\n4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\nX-Trailer: done\r\n\r\n"), "\(text)")
            #expect(answers.count > 2 && answers[2].contains("Content-Length: 100\r\n") && answers[2].hasSuffix("\r\n\r\n"), "\(text)")

            let unframed = try RawSocket(port: port)
            unframed.send("GET /u/admin/web/until-close HTTP/1.1\r\n\(fields)\r\n")
            let whole = try await unframed.receive { _ in false }  // until the hub closes
            #expect(whole.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(whole)")
            #expect(whole.contains("\r\nConnection: close\r\n"), "\(whole)")
            #expect(whole.hasSuffix("\r\n\r\nall of it"), "\(whole)")
        }
    }

    /// A body framed by Content-Length reaches the app whole, and the request after it on the
    /// connection is read from where the body ends.
    @Test func aBodyWithALengthReachesTheAppWhole() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let size = 3 << 20
            let socket = try RawSocket(port: port)
            socket.send("POST /u/admin/web/upload HTTP/1.1\r\n\(fields)Content-Length: \(size)\r\n\r\n"
                + String(repeating: "x", count: size) + "GET /u/admin/web/echo/next HTTP/1.1\r\n\(fields)\r\n")
            let text = try await socket.receive { Self.bodies($0).count >= 2 }
            let bodies = Self.bodies(text)
            #expect(bodies.first == "{\"received\": \(size)}", "\(text)")
            #expect(bodies.count == 2 && bodies[1].contains("\"path\": \"/echo/next\""), "\(text)")
        }
    }

    /// Requests whose framing two parsers could read differently (the classic request
    /// smuggling shapes) never reach the app as a second, hidden request.
    @Test func ambiguousFramingNeverSmugglesARequestToTheApp() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let hidden = "GET /u/admin/web/echo/smuggled HTTP/1.1\r\n\(fields)\r\n"
            let framings = [
                "Content-Length: 5\r\nTransfer-Encoding: chunked",
                "Transfer-Encoding: chunked\r\nContent-Length: 5",
                "Content-Length: 5\r\nContent-Length: 0",
                "Content-Length : 0\r\nTransfer-Encoding: chunked",
                "Transfer-Encoding : chunked\r\nContent-Length: 5",
                "Transfer-Encoding: chunked, identity\r\nContent-Length: 5",
                "Transfer-Encoding:\tchunked\r\nX-Fold: a\r\n b",
            ]
            // For the app and for the hub, at a connection's start and after a request lent to the parser.
            for framing in framings {
                for (opening, path) in [Opening.none, .hubRequest].flatMap({ opening in
                    ["/u/admin/web/echo/first", "/api/auth/login"].map { (opening, $0) }
                }) {
                    let socket = try RawSocket(port: port)
                    socket.send("\(opening.text)POST \(path) HTTP/1.1\r\n\(fields)\(framing)\r\n\r\n0\r\n\r\n\(hidden)")
                    let text = try await socket.receive { _ in false }  // until the hub closes
                    let label = "\(opening) \(path) \(framing.debugDescription)"
                    #expect(!text.contains("smuggled"), "\(label): \(text)")
                    let answers = text.components(separatedBy: "HTTP/1.1 ").count - 1
                    #expect(answers > (opening == .none ? 0 : 1), "\(label): no answer at all: \(text)")
                }
            }
        }
    }
}

