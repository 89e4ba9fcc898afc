import EnvHubTestSupport
import Foundation
import HTTPTypes
import Testing

@testable import EnvHubServer

/// A page of another origin (a sibling subdomain, which SameSite=Lax does not keep out)
/// cannot use a signed-in user's cookie to change something or open a WebSocket: not on the
/// API, not through the gateway on either path, not on the chat socket; nor frame or fetch a
/// user's app (`CrossOrigin`).
@Suite struct CrossOriginTests {
    static func claims(site: String? = nil, mode: String? = nil, dest: String? = nil, origin: String? = nil) -> CrossOrigin.Claims {
        var claims = CrossOrigin.Claims()
        claims.fetchSite = site
        claims.fetchMode = mode
        claims.fetchDest = dest
        claims.origin = origin
        return claims
    }

    @Test func theBrowsersWordDecides() {
        let host = "hub.example:8443"
        func refusal(_ claims: CrossOrigin.Claims, host: String = host) -> String? {
            CrossOrigin.refusal(method: .post, webSocket: false, hasAuthorization: false, claims: claims, host: host)
        }
        #expect(refusal(Self.claims(site: "same-origin", origin: "https://blog.example")) == nil)
        #expect(refusal(Self.claims(site: "none")) == nil)
        #expect(refusal(Self.claims(site: "same-site", origin: "https://hub.example:8443"))?.contains("same-site") == true)
        #expect(refusal(Self.claims(site: "cross-site")) != nil)
        #expect(refusal(Self.claims(origin: "https://Hub.Example:8443")) == nil)
        #expect(refusal(Self.claims(origin: "https://hub.example"))?.contains("https://hub.example") == true)
        #expect(refusal(Self.claims(origin: "https://blog.example"), host: "blog.example.hub.example") != nil)
        #expect(refusal(Self.claims(origin: "null")) != nil)
        #expect(refusal(Self.claims()) == nil)  // no browser

        // Which requests the rule is for: writes and WebSocket handshakes, without a token.
        let foreign = Self.claims(site: "cross-site")
        for (method, webSocket, checked) in [(HTTPRequest.Method.get, false, false), (.head, false, false), (.options, false, false),
                                             (.get, true, true), (.post, false, true), (.put, false, true), (.patch, false, true),
                                             (.delete, false, true), (HTTPRequest.Method("PROPFIND")!, false, true)] {
            let refused = CrossOrigin.refusal(method: method, webSocket: webSocket, hasAuthorization: false, claims: foreign, host: host)
            #expect((refused != nil) == checked, "\(method) \(webSocket)")
            #expect(CrossOrigin.refusal(method: method, webSocket: webSocket, hasAuthorization: true, claims: foreign, host: host) == nil)
        }
    }

    /// The gateway's rule for apps: another origin's page may follow a link to one, nothing else.
    @Test func otherOriginsMayOnlyLinkToAnApp() {
        func refused(_ claims: CrossOrigin.Claims, method: HTTPRequest.Method = .get, token: Bool = false) -> Bool {
            CrossOrigin.gatewayRefusal(method: method, webSocket: false, hasAuthorization: token, claims: claims, host: "hub.example") != nil
        }
        #expect(!refused(Self.claims(site: "cross-site", mode: "navigate", dest: "document")))
        #expect(!refused(Self.claims(site: "same-site", mode: "navigate", dest: "document")))
        #expect(refused(Self.claims(site: "same-site", mode: "navigate", dest: "iframe")))
        #expect(refused(Self.claims(site: "same-site", mode: "no-cors", dest: "image")))
        #expect(refused(Self.claims(site: "cross-site", mode: "cors", dest: "empty")))
        #expect(refused(Self.claims(site: "same-site", mode: "navigate", dest: "document"), method: .post))  // a form's post
        #expect(!refused(Self.claims(site: "same-origin", mode: "navigate", dest: "iframe")))
        #expect(!refused(Self.claims(site: "none", mode: "navigate", dest: "document")))
        #expect(!refused(Self.claims(site: "same-site", mode: "no-cors", dest: "image"), token: true))
        #expect(!refused(Self.claims()))  // no browser, or one too old to say
    }

    @Test func theAPITakesWritesWithTheCookieOnlyFromTheHubsOwnPages() async throws {
        try await TestHub.run(live: true) { hub in
            let token = try await hub.adminToken()
            let port = try #require(hub.client.port)
            let cookie = "envhub_session=\(token)"
            let create: [String: Any] = ["name": "notes", "template": "hello"]
            for (name, value) in [(HTTPField.Name.secFetchSite, "same-site"), (.secFetchSite, "cross-site"), (.origin, "http://blog.example")] {
                let refused = try await hub.request(.post, "/api/users/admin/projects", json: create, headers: [.cookie: cookie, name: value])
                #expect(refused.status == .forbidden, "\(name): \(value)")
                #expect(refused.errorCode == "cross_origin", "\(refused.text)")
            }
            #expect(try await hub.adminProject("notes") == nil)

            // The same from the hub's own pages; and a token, which no other origin's page can send.
            let fromTheHub = try await hub.request(
                .post, "/api/users/admin/projects", json: create, headers: [.cookie: cookie, .secFetchSite: "same-origin"])
            #expect(fromTheHub.status == .created, "\(fromTheHub.text)")
            let withToken = try await hub.request(
                .post, "/api/users/admin/projects", token: token, json: ["name": "todo", "template": "hello"],
                headers: [.secFetchSite: "cross-site"])
            #expect(withToken.status == .created, "\(withToken.text)")
            // A browser without Sec-Fetch-Site, on the hub's own origin.
            let deleted = try await rawHTTPExchange(port: port, "DELETE /api/users/admin/projects/todo HTTP/1.1\r\n"
                + "Host: 127.0.0.1:\(port)\r\nOrigin: http://127.0.0.1:\(port)\r\nCookie: \(cookie)\r\n\r\n")
            #expect(deleted.hasPrefix("HTTP/1.1 204"), "\(deleted)")

            // Reading is not refused; signing in from another site is (login CSRF).
            let read = try await hub.request(.get, "/api/users/admin/projects", headers: [.cookie: cookie, .secFetchSite: "cross-site"])
            #expect(read.status == .ok)
            let login = try await hub.request(
                .post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword],
                headers: [.secFetchSite: "cross-site"])
            #expect(login.status == .forbidden)
            #expect(login.headers[.setCookie] == nil)
        }
    }

    /// `answer` is the gateway's 403 `cross_origin`, and the probe app never saw a request for `path`.
    static func expectRefused(_ answer: String, _ path: String, _ hub: TestHub, _ token: String) async throws {
        #expect(answer.contains("HTTP/1.1 403"), "\(answer)")
        #expect(answer.contains(#""code":"cross_origin""#), "\(answer)")
        let seen = try await hub.request(.get, "/u/admin/web/seen?target=\(path)", token: token)
        #expect(seen.object["count"] as? Int == 0, "\(path)")
    }

    /// On the byte path and on NIO's parser: refused before the session is even looked at, so
    /// the app never sees the request.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood])
    func theGatewayPassesCookieWritesOnlyFromTheHubsOwnPages(after opening: GatewayConnectionTests.Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            func post(_ path: String, _ fields: String) async throws -> String {
                let socket = try RawSocket(port: port)
                socket.send(opening.text + "POST /u/admin/web\(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                    + "Cookie: envhub_session=\(token)\r\n\(fields)Content-Length: 2\r\n\r\n{}")
                return try await socket.receive { GatewayConnectionTests.bodies($0).count == (opening == .none ? 1 : 2) }
            }
            try await Self.expectRefused(post("/echo-refused", "Sec-Fetch-Site: same-site\r\n"), "/echo-refused", hub, token)
            try await Self.expectRefused(post("/echo-refused", "Origin: http://blog.example\r\n"), "/echo-refused", hub, token)

            let passed = try await post("/echo", "Sec-Fetch-Site: same-origin\r\n")
            #expect(passed.contains(#""method": "POST""#), "\(passed)")
            let passedByOrigin = try await post("/echo", "Origin: http://127.0.0.1:\(port)\r\n")
            #expect(passedByOrigin.contains(#""method": "POST""#), "\(passedByOrigin)")
        }
    }

    /// A page of the same site can frame a user's app (or fetch from it) with the cookie; the
    /// gateway lets another origin only link to it, on both paths.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood])
    func anotherOriginMayLinkToAnAppButNotFrameIt(after opening: GatewayConnectionTests.Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            func get(_ path: String, dest: String) async throws -> String {
                let socket = try RawSocket(port: port)
                socket.send(opening.text + "GET /u/admin/web\(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                    + "Cookie: envhub_session=\(token)\r\nSec-Fetch-Site: same-site\r\nSec-Fetch-Mode: navigate\r\n"
                    + "Sec-Fetch-Dest: \(dest)\r\n\r\n")
                return try await socket.receive { GatewayConnectionTests.bodies($0).count == (opening == .none ? 1 : 2) }
            }
            try await Self.expectRefused(get("/echo-framed", dest: "iframe"), "/echo-framed", hub, token)
            let linked = try await get("/echo", dest: "document")
            #expect(linked.contains(#""method": "GET""#), "\(linked)")
        }
    }

    /// A WebSocket handshake (a GET) is checked too: a desktop's socket is the user's screen
    /// and keyboard.
    @Test func theGatewayOpensWebSocketsWithTheCookieOnlyFromTheHubsOwnPages() async throws {
        try await GatewayTests.withActiveProject("probe") { hub, token, port in
            func handshake(_ path: String, origin: String) async throws -> String {
                try await rawHTTPExchange(port: port, "GET /u/admin/web\(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                    + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    + "Sec-WebSocket-Version: 13\r\nOrigin: \(origin)\r\nCookie: envhub_session=\(token)\r\n\r\n")
            }
            try await Self.expectRefused(handshake("/socket-refused", origin: "http://blog.example"), "/socket-refused", hub, token)
            // The probe app does not speak WebSocket: its answer to the handshake is passed on.
            let passed = try await handshake("/echo", origin: "http://127.0.0.1:\(port)")
            #expect(passed.hasPrefix("HTTP/1.1 200"), "\(passed)")
            #expect(passed.contains(#""origin": "http://127.0.0.1:\#(port)""#), "\(passed)")
        }
    }

    @Test func theChatSocketOpensWithTheCookieOnlyFromTheHubsOwnPages() async throws {
        try await TestHub.run(live: true) { hub in
            let token = try await hub.adminToken()
            let port = try #require(hub.client.port)
            func handshake(origin: String) async throws -> String {
                let socket = try RawSocket(port: port)
                socket.send("GET /api/chat HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: \(origin)\r\n"
                    + "Cookie: envhub_session=\(token)\r\n\r\n")
                return try await socket.receive { $0.contains("\r\n\r\n") && ($0.hasPrefix("HTTP/1.1 101") || $0.contains("}}")) }
            }
            let refused = try await handshake(origin: "http://blog.example")
            #expect(refused.hasPrefix("HTTP/1.1 403"), "\(refused)")
            #expect(refused.contains(#""code":"cross_origin""#), "\(refused)")
            let opened = try await handshake(origin: "http://127.0.0.1:\(port)")
            #expect(opened.hasPrefix("HTTP/1.1 101"), "\(opened)")
        }
    }
}
