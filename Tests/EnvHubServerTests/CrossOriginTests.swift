import EnvHubTestSupport
import Foundation
import HTTPTypes
import Testing

@testable import EnvHubServer

/// A page of another origin (a sibling subdomain, which SameSite=Lax does not keep out)
/// cannot use a signed-in user's cookie to change something or open a WebSocket: not on the
/// API, not through the gateway on either path, not on the chat socket (`CrossOrigin`).
@Suite struct CrossOriginTests {
    @Test func theBrowsersWordDecides() {
        let host = "hub.example:8443"
        #expect(CrossOrigin.refusal(fetchSite: "same-origin", origin: "https://blog.example", host: host) == nil)
        #expect(CrossOrigin.refusal(fetchSite: "none", origin: nil, host: host) == nil)
        #expect(CrossOrigin.refusal(fetchSite: "same-site", origin: "https://hub.example:8443", host: host)?.contains("same-site") == true)
        #expect(CrossOrigin.refusal(fetchSite: "cross-site", origin: nil, host: host) != nil)
        #expect(CrossOrigin.refusal(fetchSite: nil, origin: "https://Hub.Example:8443", host: host) == nil)
        #expect(CrossOrigin.refusal(fetchSite: nil, origin: "https://hub.example", host: host)?.contains("https://hub.example") == true)
        #expect(CrossOrigin.refusal(fetchSite: nil, origin: "https://blog.example", host: "blog.example.hub.example") != nil)
        #expect(CrossOrigin.refusal(fetchSite: nil, origin: "null", host: host) != nil)
        #expect(CrossOrigin.refusal(fetchSite: nil, origin: nil, host: host) == nil)  // no browser

        #expect(!CrossOrigin.isChecked(method: .get, webSocket: false, hasAuthorization: false))
        #expect(!CrossOrigin.isChecked(method: .head, webSocket: false, hasAuthorization: false))
        #expect(!CrossOrigin.isChecked(method: .options, webSocket: false, hasAuthorization: false))
        #expect(CrossOrigin.isChecked(method: .get, webSocket: true, hasAuthorization: false))
        for method in [HTTPRequest.Method.post, .put, .patch, .delete, HTTPRequest.Method("PROPFIND")!] {
            #expect(CrossOrigin.isChecked(method: method, webSocket: false, hasAuthorization: false), "\(method)")
            #expect(!CrossOrigin.isChecked(method: method, webSocket: false, hasAuthorization: true), "\(method)")
        }
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
            let refused = try await post("/echo-refused", "Sec-Fetch-Site: same-site\r\n")
            #expect(refused.contains("HTTP/1.1 403"), "\(refused)")
            #expect(refused.contains(#""code":"cross_origin""#), "\(refused)")
            let refusedByOrigin = try await post("/echo-refused", "Origin: http://blog.example\r\n")
            #expect(refusedByOrigin.contains("HTTP/1.1 403"), "\(refusedByOrigin)")
            let seen = try await hub.request(.get, "/u/admin/web/seen?target=/echo-refused", token: token)
            #expect(seen.object["count"] as? Int == 0)

            let passed = try await post("/echo", "Sec-Fetch-Site: same-origin\r\n")
            #expect(passed.contains(#""method": "POST""#), "\(passed)")
            let passedByOrigin = try await post("/echo", "Origin: http://127.0.0.1:\(port)\r\n")
            #expect(passedByOrigin.contains(#""method": "POST""#), "\(passedByOrigin)")
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
            let refused = try await handshake("/socket-refused", origin: "http://blog.example")
            #expect(refused.hasPrefix("HTTP/1.1 403"), "\(refused)")
            #expect(refused.contains(#""code":"cross_origin""#), "\(refused)")
            let seen = try await hub.request(.get, "/u/admin/web/seen?target=/socket-refused", token: token)
            #expect(seen.object["count"] as? Int == 0)
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
