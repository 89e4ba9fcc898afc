import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import EnvHubServer

@Suite struct AuthTests {
    @Test(arguments: TestDatabase.allCases)
    func loginSetsAnHttpOnlyCookieThatAuthenticates(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            let response = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword])
            #expect(response.status == .ok)
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Lax"))
            #expect(!cookie.contains("Secure"))
            let token = try #require(response.object["token"] as? String)
            #expect(cookie.hasPrefix("envhub_session=\(token);"))
            #expect((response.object["user"] as? [String: Any])?["role"] as? String == "admin")

            let me = try await hub.request(.get, "/api/auth/me", headers: [.cookie: "envhub_session=\(token)"])
            #expect(me.status == .ok)
            #expect(me.object["username"] as? String == "admin")
        }
    }

    /// Secure when the hub is told so, or when a trusted proxy says the client came over
    /// https; a client that says so itself is not believed. A Secure one is `__Host-`.
    @Test func cookiesAreSecureWhenToldOrBehindHTTPS() async throws {
        try await TestHub.run(configure: { $0.secureCookies = true }) { hub in
            let response = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword])
            let token = try #require(response.object["token"] as? String)
            let fields = response.headers[values: .setCookie]
            #expect(fields.count == 2, "\(fields)")
            #expect(fields.first?.hasPrefix("__Host-envhub_session=\(token); Max-Age=") == true)
            #expect(fields.first?.hasSuffix("; Path=/; HttpOnly; SameSite=Lax; Secure") == true)
            #expect(fields.last == "envhub_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure", "the plain one is cleared")
        }
        for trusted in [true, false] {
            try await TestHub.run(configure: { $0.trustedProxies = try! TrustedProxies(trusted ? "127.0.0.0/8" : "10.0.0.0/8") }, live: true) { hub in
                let login = try await hub.request(
                    .post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword],
                    headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
                #expect(login.headers[.setCookie]?.contains("; Secure") == trusted, "trusted: \(trusted)")
                #expect(login.headers[.setCookie]?.hasPrefix("__Host-envhub_session=") == trusted, "trusted: \(trusted)")
                let token = try #require(login.object["token"] as? String)
                let logout = try await hub.request(
                    .post, "/api/auth/logout", token: token, headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
                let cleared = logout.headers[values: .setCookie]
                #expect(cleared.allSatisfy { $0.contains("=; Max-Age=0;") && $0.hasSuffix("; Secure") == trusted }, "\(cleared)")
                #expect(cleared.map { $0.prefix { $0 != "=" } } == (trusted ? ["envhub_session", "__Host-envhub_session"] : ["envhub_session"]))
            }
        }
    }

    /// A page on another host of the hub's site (an app on a sibling subdomain) can set
    /// `envhub_session` for the whole domain, sent before the hub's own when its path is
    /// longer; it cannot set `__Host-envhub_session`, which the hub reads first.
    @Test func aCookiePlantedForTheWholeSiteDoesNotShadowTheSecureSession() async throws {
        try await TestHub.run(configure: { $0.secureCookies = true }) { hub in
            let admin = try await hub.adminToken()
            let bob = try await hub.createUser("bob", adminToken: admin)
            let me = try await hub.request(
                .get, "/api/auth/me", headers: [.cookie: "envhub_session=\(bob); __Host-envhub_session=\(admin)"])
            #expect(me.object["username"] as? String == "admin", "\(me.text)")
        }
    }

    @Test func wrongPasswordsAndUnknownUsersGetTheSame401() async throws {
        try await TestHub.run { hub in
            let wrong = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": "not-the-password"])
            let unknown = try await hub.request(.post, "/api/auth/login", json: ["username": "ghost", "password": "not-the-password"])
            #expect(wrong.status == .unauthorized)
            #expect(unknown.status == .unauthorized)
            #expect(wrong.text == unknown.text)
            #expect(wrong.errorCode == "unauthenticated")
        }
    }

    @Test func logoutRevokesTheSession() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let other = try await hub.adminToken()
            #expect(try await hub.request(.post, "/api/auth/logout", token: token).status == .noContent)
            #expect(try await hub.request(.get, "/api/auth/me", token: token).status == .unauthorized)
            #expect(try await hub.request(.get, "/api/auth/me", token: other).status == .ok)
            let verify = try await hub.request(.post, "/api/auth/verify", json: ["token": token])
            #expect(verify.status == .ok)
            #expect(verify.object["valid"] as? Bool == false)
        }
    }

    @Test func verifyNamesTheUserOfAValidToken() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let verify = try await hub.request(.post, "/api/auth/verify", json: ["token": token])
            #expect(verify.object["valid"] as? Bool == true)
            #expect((verify.object["user"] as? [String: Any])?["username"] as? String == "admin")
            let forged = try await hub.request(.post, "/api/auth/verify", json: ["token": String(token.dropLast(2)) + "xx"])
            #expect(forged.object["valid"] as? Bool == false)
        }
    }

    @Test func expiredSessionsAreRejected() async throws {
        // Five seconds: a loaded machine (the whole suite at once) has taken more than one
        // between the login and the first request, which then failed.
        try await TestHub.run(configure: { $0.sessionLifetime = .seconds(5) }) { hub in
            let token = try await hub.adminToken()
            #expect(try await hub.request(.get, "/api/auth/me", token: token).status == .ok)
            let deadline = Date().addingTimeInterval(20)
            var status = HTTPResponse.Status.ok
            while status == .ok, Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
                status = try await hub.request(.get, "/api/auth/me", token: token).status
            }
            #expect(status == .unauthorized)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func fiveFailuresLockTheNameUntilTheWindowPasses(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            for _ in 0..<5 {
                let response = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": "wrong-guess"])
                #expect(response.status == .unauthorized)
            }
            let locked = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword])
            #expect(locked.status == .tooManyRequests)
            let retryAfter = try #require(locked.headers[.retryAfter].flatMap { Int($0) })
            #expect(retryAfter > 200 && retryAfter <= 300)
            #expect(locked.errorCode == "too_many_requests")
            // Other names are not affected.
            let other = try await hub.request(.post, "/api/auth/login", json: ["username": "someone", "password": "wrong-guess"])
            #expect(other.status == .unauthorized)
            // Once the failures are older than five minutes the name is free again.
            try await hub.hub.store.database.query("UPDATE login_failures SET failed_at = failed_at - 300001")
            #expect(try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": TestHub.adminPassword]).status == .ok)
        }
    }

    /// A stranger's guesses lock the name for the stranger's address only: its owner still
    /// signs in from another. Behind a trusted proxy the address is the one it names.
    @Test func aLockHoldsOnlyForTheAddressTheGuessesCameFrom() async throws {
        try await TestHub.run(configure: { $0.trustedProxies = try! TrustedProxies("127.0.0.0/8") }, live: true) { hub in
            @Sendable func login(_ password: String, from client: String?) async throws -> TestResponse {
                var headers = HTTPFields()
                if let client { headers[HTTPField.Name("X-Forwarded-For")!] = client }
                return try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": password], headers: headers)
            }
            for _ in 0..<5 {
                #expect(try await login("wrong-guess", from: "203.0.113.7").status == .unauthorized)
            }
            let locked = try await login(TestHub.adminPassword, from: "203.0.113.7")
            #expect(locked.status == .tooManyRequests)
            #expect(locked.text.contains("from this address"), "\(locked.text)")
            #expect(try await login(TestHub.adminPassword, from: "198.51.100.2").status == .ok)
            #expect(try await login(TestHub.adminPassword, from: nil).status == .ok, "the proxy's own address")
            // A client cannot dodge its lock by claiming another address: the proxy adds the
            // address it saw at the end, and that one counts.
            #expect(try await login(TestHub.adminPassword, from: "198.51.100.2, 203.0.113.7").status == .tooManyRequests)
        }
    }

    @Test func registrationIsClosedUnlessOpenSignupIsOn() async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.post, "/api/auth/register", json: ["username": "carol", "password": "password-123"])
            #expect(response.status == .forbidden)
            #expect(response.errorMessage?.contains("open sign-up is off") == true)
        }
        try await TestHub.run(configure: { $0.openSignup = true }) { hub in
            let response = try await hub.request(
                .post, "/api/auth/register", json: ["username": "carol", "password": "password-123", "email": "c@example.org"])
            #expect(response.status == .created)
            let token = try #require(response.object["token"] as? String)
            let me = try await hub.request(.get, "/api/auth/me", token: token)
            #expect(me.object["role"] as? String == "user")
            #expect(me.object["email"] as? String == "c@example.org")
            let again = try await hub.request(.post, "/api/auth/register", json: ["username": "carol", "password": "password-123"])
            #expect(again.status == .conflict)
            let bad = try await hub.request(.post, "/api/auth/register", json: ["username": "Carol!", "password": "password-123"])
            #expect(bad.status == .badRequest)
            let short = try await hub.request(.post, "/api/auth/register", json: ["username": "dave", "password": "short"])
            #expect(short.status == .badRequest)
            #expect(short.errorMessage == "password must be at least 8 characters")
        }
    }

    @Test func changingAPasswordSignsOutTheOtherSessions() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let first = try await hub.createUser("alice", adminToken: admin)
            let second = try await hub.login("alice", "password-123")
            let wrong = try await hub.request(
                .post, "/api/users/alice/password", token: first, json: ["currentPassword": "nope-nope", "newPassword": "new-password-1"])
            #expect(wrong.status == .forbidden)
            let changed = try await hub.request(
                .post, "/api/users/alice/password", token: first,
                json: ["currentPassword": "password-123", "newPassword": "new-password-1"])
            #expect(changed.status == .noContent)
            #expect(try await hub.request(.get, "/api/auth/me", token: first).status == .ok)
            #expect(try await hub.request(.get, "/api/auth/me", token: second).status == .unauthorized)
            _ = try await hub.login("alice", "new-password-1")
            // An admin resetting it signs alice out everywhere.
            let reset = try await hub.request(.post, "/api/users/alice/password", token: admin, json: ["newPassword": "reset-password-1"])
            #expect(reset.status == .noContent)
            #expect(try await hub.request(.get, "/api/auth/me", token: first).status == .unauthorized)
        }
    }
}

@Suite struct SweeperTests {
    @Test func expiredSessionsAndOldFailuresAreSwept() async throws {
        try await TestHub.run { hub in
            _ = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/auth/login", json: ["username": "admin", "password": "wrong-password"])
            let store = hub.hub.store
            let count = { (table: String) async throws -> Int64 in
                try await store.database.query("SELECT COUNT(*) AS n FROM \(table)").first?.int("n") ?? -1
            }
            #expect(try await count("sessions") == 1)
            #expect(try await count("login_failures") == 1)
            let sweeper = SessionSweeper(store: store, interval: .seconds(3600), logger: quietLogger)
            try await sweeper.sweep(now: Date())
            #expect(try await count("sessions") == 1)
            try await sweeper.sweep(now: Date().addingTimeInterval(8 * 24 * 3600))
            #expect(try await count("sessions") == 0)
            #expect(try await count("login_failures") == 0)
        }
    }
}
