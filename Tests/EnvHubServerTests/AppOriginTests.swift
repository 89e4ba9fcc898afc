import EnvHubCore
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Testing

@testable import EnvHubServer

/// Users' apps on origins of their own (`--apps-url`): a browser signs in to one through the
/// hub, the app origin's cookie is good there alone, and the hub's session cookie never
/// reaches an app.
@Suite struct AppOriginTests {
    static let origins = try! AppOrigins(publicURL: "http://hub.test", appsURL: "http://apps.test:8443")

    @Test func appOriginsAreSubdomainsNamedForTheirUsers() throws {
        #expect(Self.origins.owner(ofHost: "alice.apps.test:8443")?.rawValue == "alice")
        #expect(Self.origins.owner(ofHost: "Alice.Apps.Test")?.rawValue == "alice")
        #expect(Self.origins.owner(ofHost: "alice.apps.test:x") == nil)
        for host in ["apps.test", ".apps.test", "hub.test", "x.alice.apps.test", "alice.apps.test.evil", "alice_x.apps.test", nil] {
            #expect(Self.origins.owner(ofHost: host) == nil, "\(host ?? "nil")")
        }
        #expect(Self.origins.origin(of: UserName(rawValue: "alice")!) == "http://alice.apps.test:8443")
        #expect(Self.origins.hubOrigin == "http://hub.test")
        #expect(try AppOrigins(publicURL: "https://hub.example.com:443/", appsURL: "https://apps.example.net").hubOrigin
            == "https://hub.example.com")

        for (hub, apps) in [("ftp://hub.test", "http://apps.test"), ("http://hub.test/path", "http://apps.test"),
                            ("http://hub.test", "http://apps.test/?x"), ("http://hub.test", "apps.test"),
                            ("http://apps.test", "http://apps.test"), ("http://alice.apps.test", "http://apps.test")] {
            #expect(throws: AppOrigins.Invalid.self, "\(hub) \(apps)") { try AppOrigins(publicURL: hub, appsURL: apps) }
        }
        _ = try AppOrigins(publicURL: "http://hub.eu.apps.test", appsURL: "http://apps.test")  // no user's origin
    }

    @Test func aBrowserSignsInToItsAppOriginThroughTheHub() async throws {
        try await GatewayTests.withActiveProject("probe", configure: { $0.appOrigins = Self.origins }) { hub, token, port in
            let browser = Browser(port: port)
            let hubCookie = "envhub_session=\(token)"

            // On the hub's origin a browser is sent to the app's; a script with a token is served.
            let sent = try await browser.get("http://hub.test/u/admin/web/echo?x=1", cookie: hubCookie)
            #expect(sent.status == 307, "\(sent.text)")
            #expect(sent.location == "http://admin.apps.test:8443/u/admin/web/echo?x=1")
            let script = try await browser.get("http://hub.test/u/admin/web/echo", headers: ["Authorization: Bearer \(token)"])
            #expect(script.status == 200, "\(script.text)")

            // The app origin: no cookie yet, so off to the hub with a state of its own.
            let start = try await browser.get("http://admin.apps.test:8443/u/admin/web/echo?x=1")
            #expect(start.status == 302, "\(start.text)")
            let ticketURL = try #require(start.location.flatMap(URLComponents.init(string:)))
            #expect(ticketURL.host == "hub.test" && ticketURL.path == "/api/auth/app-ticket", "\(start.location ?? "")")
            #expect(ticketURL.queryItems?.first { $0.name == "next" }?.value == "/u/admin/web/echo?x=1")
            let state = try #require(ticketURL.queryItems?.first { $0.name == "state" }?.value)
            let stateCookie = "envhub_app_state_\(state)=1"
            #expect(start.setCookies.contains { $0.hasPrefix(stateCookie + ";") && $0.contains("Path=/.envhub/app-session") && $0.contains("HttpOnly") },
                    "\(start.setCookies)")
            #expect(try await browser.get("http://admin.apps.test:8443/u/admin/web/echo", headers: ["Accept: application/json"]).status == 401,
                    "an API client is told")

            // The hub: signed out, to the sign-in page and back; signed in, a ticket.
            let signIn = try await browser.get(start.location!)
            #expect(signIn.status == 302)
            let loginNext = signIn.location.flatMap(URLComponents.init(string:))?.queryItems?.first { $0.name == "next" }?.value
            #expect(signIn.location?.hasPrefix("/login?") == true)
            #expect(loginNext == "/api/auth/app-ticket?" + (ticketURL.percentEncodedQuery ?? ""), "\(signIn.location ?? "")")
            let issued = try await browser.get(start.location!, cookie: hubCookie)
            #expect(issued.status == 302, "\(issued.text)")
            let sessionURL = try #require(issued.location.flatMap(URLComponents.init(string:)))
            #expect("\(sessionURL.scheme ?? "")://\(sessionURL.host ?? ""):\(sessionURL.port ?? 0)\(sessionURL.path)"
                == "http://admin.apps.test:8443/.envhub/app-session")
            #expect(issued.field("referrer-policy") == "no-referrer")

            // The ticket without the state cookie (a URL read elsewhere) or on another origin: refused.
            #expect(try await browser.get(issued.location!).status == 400)
            #expect(try await browser.get(issued.location!, cookie: "envhub_app_state_0-1=1").status == 400)
            let elsewhere = issued.location!.replacingOccurrences(of: "admin.apps.test", with: "bob.apps.test")
            #expect(try await browser.get(elsewhere, cookie: stateCookie).status == 400)

            // A second sign-in begun meanwhile (another tab) has a state cookie of its own: both finish.
            let other = try await browser.get("http://admin.apps.test:8443/u/admin/web/")
            let otherIssued = try await browser.get(try #require(other.location), cookie: hubCookie)
            let otherState = try #require(other.setCookies.first.map { String($0.prefix { $0 != ";" }) })
            #expect(otherState != stateCookie)
            let otherSession = try await browser.get(try #require(otherIssued.location), cookie: "\(stateCookie); \(otherState)")
            #expect(otherSession.status == 302 && otherSession.location == "/u/admin/web/", "\(otherSession.text)")

            let session = try await browser.get(issued.location!, cookie: "\(otherState); \(stateCookie)")
            #expect(session.status == 302, "\(session.text)")
            #expect(session.location == "/u/admin/web/echo?x=1")
            let appToken = try #require(session.cookie(named: "envhub_session"))
            #expect(session.setCookies.contains { $0.hasPrefix("envhub_session=") && $0.contains("HttpOnly") && $0.contains("Path=/;") })
            #expect(session.cookie(named: "envhub_app_state_\(state)") == "", "the state is spent")

            // The app is served on its origin, and never sees the cookie.
            let app = try await browser.get("http://admin.apps.test:8443/u/admin/web/echo?x=1", cookie: "envhub_session=\(appToken); theme=dark")
            #expect(app.status == 200, "\(app.text)")
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(app.text.utf8)) as? [String: Any])
            let headers = try #require(seen["headers"] as? [String: String])
            #expect(headers["cookie"] == "theme=dark")
            #expect(headers["x-forwarded-host"] == "admin.apps.test:8443")
            #expect(seen["path"] as? String == "/echo?x=1")

            // A WebSocket handshake (noVNC's) takes the other path through the gateway: the same rules.
            func handshake(host: String, cookie: String) async throws -> String {
                try await rawHTTPExchange(port: port, WebSocketTunnelTests.upgrade("/u/admin/web/echo", extra: "Cookie: \(cookie)\r\n")
                    .replacingOccurrences(of: "Host: localhost", with: "Host: \(host)"))
            }
            let tunnelled = try await handshake(host: "admin.apps.test:8443", cookie: "envhub_session=\(appToken)")
            #expect(tunnelled.hasPrefix("HTTP/1.1 200") && tunnelled.contains("\"upgrade\": \"websocket\""), "\(tunnelled)")
            #expect(try await handshake(host: "hub.test", cookie: "envhub_session=\(appToken)").hasPrefix("HTTP/1.1 401"))
            #expect(try await handshake(host: "admin.apps.test:8443", cookie: "x=1").hasPrefix("HTTP/1.1 401"))

            // The app origin's cookie is good there alone: not on the hub's API, nor another app origin.
            #expect(try await hub.request(.get, "/api/auth/me", token: appToken).status == .unauthorized)
            #expect(try await browser.get("http://hub.test/api/auth/me", cookie: "envhub_session=\(appToken)").status == 401)
            #expect(try await browser.get("http://hub.test/u/admin/web/echo", cookie: "envhub_session=\(appToken)").status == 302,
                    "to the hub's sign-in page")

            // Signing out of the hub ends it.
            #expect(try await hub.request(.post, "/api/auth/logout", token: token).status == .noContent)
            let after = try await browser.get("http://admin.apps.test:8443/u/admin/web/echo", cookie: "envhub_session=\(appToken)")
            #expect(after.status == 302)
            #expect(after.location?.hasPrefix("http://hub.test/api/auth/app-ticket?") == true)
        }
    }

    @Test func anAppOriginServesItsUsersAppsAndNothingElse() async throws {
        try await GatewayTests.withActiveProject("probe", configure: { $0.appOrigins = Self.origins }) { hub, token, port in
            let browser = Browser(port: port)
            let bob = try await hub.createUser("bob", adminToken: token)
            try await hub.startProject("mine", template: "hello", owner: "bob", token: bob)
            let bearer = ["Authorization: Bearer \(token)"]
            // The hub's pages and API are not on an app origin; nor another user's apps.
            for path in ["/", "/login", "/api/users", "/api/auth/app-ticket?next=/u/admin/web/&state=1", "/metrics"] {
                let answer = try await browser.get("http://admin.apps.test:8443\(path)", headers: bearer)
                #expect(answer.status == 404, "\(path): \(answer.text)")
            }
            #expect(try await browser.get("http://admin.apps.test:8443/u/bob/mine/", headers: bearer).status == 404)
            #expect(try await browser.get("http://admin.apps.test:8443/favicon.ico").status == 200, "browsers ask every origin")
            #expect(try await browser.get("http://bob.apps.test:8443/u/bob/mine/", headers: bearer).status == 200, "an admin's token")
            #expect(try await browser.get("http://bob.apps.test:8443/u/bob/mine/", headers: ["Authorization: Bearer \(bob)"]).status == 200)

            // Bob gets no ticket to the admin's apps.
            let refused = try await browser.get(
                "http://hub.test/api/auth/app-ticket?next=/u/admin/web/&state=1", cookie: "envhub_session=\(bob)")
            #expect(refused.status == 404, "\(refused.text)")
            #expect(try await browser.get("http://hub.test/api/auth/app-ticket?next=/api/users&state=1", cookie: "envhub_session=\(bob)")
                .status == 400)

            // A stopped project's page is the hub's, which can start it.
            #expect(try await hub.request(.post, "/api/users/bob/projects/mine/deactivate", token: bob).status == .accepted)
            try await TestHub.eventually("bob's project stops") {
                try await hub.request(.get, "/api/users/bob/projects/mine", token: bob).object["state"] as? String == "inactive"
            }
            let stopped = try await browser.get(
                "http://bob.apps.test:8443/u/bob/mine/x?y=1", headers: ["Authorization: Bearer \(bob)", "Accept: text/html"])
            #expect(stopped.status == 302, "\(stopped.text)")
            #expect(stopped.location == "http://hub.test/u/bob/mine/x?y=1")
            let page = try await browser.get(stopped.location!, cookie: "envhub_session=\(bob)")
            #expect(page.status == 200 && page.text.contains("Start"), "\(page.text)")
        }
    }

    /// Over HTTPS the app origin's cookie is `__Host-`, Secure: a cookie of the same name that
    /// another user's app origin sets for the whole apps domain cannot shadow it.
    @Test func overHTTPSTheAppOriginsCookieCannotBeShadowed() async throws {
        let origins = try AppOrigins(publicURL: "https://hub.test", appsURL: "https://apps.test")
        try await GatewayTests.withActiveProject("probe", configure: { $0.appOrigins = origins }) { _, token, port in
            let browser = Browser(port: port)
            let start = try await browser.get("https://admin.apps.test/u/admin/web/echo")
            #expect(start.setCookies.first?.hasSuffix("; HttpOnly; SameSite=Lax; Secure") == true, "\(start.setCookies)")
            let issued = try await browser.get(try #require(start.location), cookie: "envhub_session=\(token)")
            let state = try #require(start.setCookies.first.map { String($0.prefix { $0 != ";" }) })
            let session = try await browser.get(try #require(issued.location), cookie: state)
            let appToken = try #require(session.cookie(named: "__Host-envhub_session"), "\(session.setCookies)")
            #expect(session.setCookies.contains { $0.hasPrefix("__Host-envhub_session=") && $0.contains("Path=/;") && $0.hasSuffix("; Secure") })

            let shadowed = try await browser.get(
                "https://admin.apps.test/u/admin/web/echo", cookie: "envhub_session=planted; __Host-envhub_session=\(appToken); theme=dark")
            #expect(shadowed.status == 200, "\(shadowed.text)")
            #expect(shadowed.text.contains("\"cookie\": \"theme=dark\""), "\(shadowed.text)")
        }
    }

    @Test func aHubWithoutAppOriginsGivesNoTickets() async throws {
        try await TestHub.run(live: true) { hub in
            let token = try await hub.adminToken()
            let answer = try await hub.request(.get, "/api/auth/app-ticket?next=/u/admin/web/&state=1", token: token)
            #expect(answer.status == .notFound)
            #expect(answer.errorMessage?.contains("--apps-url") == true, "\(answer.text)")
        }
    }
}

/// Requests as a browser sends them, by hand: to the hub's port, with the Host of the URL.
struct Browser {
    let port: Int

    struct Answer {
        let status: Int
        let fields: [(name: String, value: String)]
        let text: String

        func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
        var location: String? { field("location") }
        var setCookies: [String] { fields.filter { $0.name == "set-cookie" }.map(\.value) }

        /// The value a Set-Cookie field gives the cookie `name`.
        func cookie(named name: String) -> String? {
            setCookies.lazy.compactMap { field -> String? in
                let pair = field.prefix { $0 != ";" }
                return pair.hasPrefix(name + "=") ? String(pair.dropFirst(name.count + 1)) : nil
            }.first
        }
    }

    /// `Accept: text/html` unless `headers` carry an Authorization field (a script) or an Accept field.
    func get(_ url: String, cookie: String? = nil, headers: [String] = []) async throws -> Answer {
        let parts = try #require(URLComponents(string: url))
        let host = (parts.host ?? "") + (parts.port.map { ":\($0)" } ?? "")
        var lines = ["GET \(parts.percentEncodedPath)\(parts.percentEncodedQuery.map { "?" + $0 } ?? "") HTTP/1.1", "Host: \(host)"]
        if !headers.contains(where: { $0.hasPrefix("Authorization:") || $0.hasPrefix("Accept:") }) { lines.append("Accept: text/html") }
        if let cookie { lines.append("Cookie: \(cookie)") }
        lines += headers + ["Connection: close", "", ""]
        let raw = try await rawHTTPExchange(port: port, lines.joined(separator: "\r\n"))
        let end = try #require(raw.range(of: "\r\n\r\n"))
        let head = raw[..<end.lowerBound].split(separator: "\r\n")
        let status = try #require(head.first.flatMap { Int($0.split(separator: " ")[1]) })
        let fields = head.dropFirst().map { line in
            let colon = line.firstIndex(of: ":")!
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Answer(status: status, fields: fields, text: String(raw[end.upperBound...]))
    }
}
