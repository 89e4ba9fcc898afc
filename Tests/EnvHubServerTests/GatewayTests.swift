import AsyncHTTPClient
import EnvHubCore
import EnvHubRuntime
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The gateway at /u/{user}/{project}/, in front of real environments: the built-in `hello`
/// and `athlete` workloads, and a small Python app that shows what it receives.
@Suite struct GatewayTests {
    static let appTemplate = """
        name: probe
        title: Probe
        components:
          - name: web
            command: ["python3", "\(gatewayTestApp.path)"]
            image: unused
            port: 8080
        """

    /// A live hub with the probe template, admin signed in, project `name` of `template` active.
    static func withActiveProject(
        _ template: String, name: String = "web", configure: @escaping @Sendable (inout AppConfig) -> Void = { _ in },
        _ body: @escaping @Sendable (TestHub, String, Int) async throws -> Void
    ) async throws {
        let directory = try TestHub.templateDirectory("probe", appTemplate)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: {
            $0.templatesDirectory = directory.path
            configure(&$0)
        }, live: true) { hub in
            let token = try await hub.adminToken()
            try await hub.startProject(name, template: template, token: token)
            try await body(hub, token, try #require(hub.client.port))
        }
    }

    @Test func helloAndAthleteAnswerThroughTheGateway() async throws {
        try await Self.withActiveProject("hello") { hub, token, _ in
            let hello = try await hub.request(.get, "/u/admin/web/", token: token)
            #expect(hello.status == .ok)
            #expect(hello.object["message"] as? String == "Hello from Flask bot of user admin!")
            #expect(try await hub.request(.get, "/u/admin/web/health", token: token).object["status"] as? String == "healthy")
            let bare = try await hub.request(.get, "/u/admin/web?x=1", token: token)
            #expect(bare.status == .permanentRedirect)
            #expect(bare.headers[.location] == "/u/admin/web/?x=1")

            try await hub.startProject("fan", template: "athlete", token: token)
            #expect(try await hub.request(.get, "/u/admin/fan/", token: token).object["favorite_athlete"] as? String == "Serena Williams")
            let refused = try await hub.request(.post, "/u/admin/fan/", token: token, rawBody: "{}")
            #expect(refused.status == .methodNotAllowed)
            #expect(refused.text == "Only GET method valid")
        }
    }

    /// On Kubernetes the record names a Service's host; the gateway connects to whatever host
    /// the record says (here rewritten in the store, which also invalidates the cached route).
    @Test func theGatewayConnectsToTheHostTheRecordNames() async throws {
        try await Self.withActiveProject("hello") { hub, token, _ in
            let store = hub.hub.store
            let project = try #require(try await store.project(owner: UserName(unchecked: "admin"), name: ProjectName(unchecked: "web")))
            var record = try await LifecycleTests.record(hub)
            for (host, status) in [("localhost", HTTPResponse.Status.ok), ("127.0.0.2", .badGateway)] {
                record.components[0].host = host
                let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
                _ = try await store.transition(projectID: project.id, from: [.active], to: .active, reason: "", desired: nil,
                                               record: .set(json), at: Date())
                try await waitFor("the gateway to use \(host)") {
                    try await hub.request(.get, "/u/admin/web/health", token: token).status == status ? true : nil
                }
            }
        }
    }

    @Test func onlyTheOwnerAndAdminsPassAndNobodyLearnsWhatExists() async throws {
        try await Self.withActiveProject("hello") { hub, token, _ in
            let bob = try await hub.createUser("bob", adminToken: token)
            let other = try await hub.request(.get, "/u/admin/web/", token: bob)
            let missing = try await hub.request(.get, "/u/admin/nothing/", token: bob)
            #expect(other.status == .notFound)
            #expect(missing.status == .notFound)
            #expect(other.object["error"] != nil)

            let api = try await hub.request(.get, "/u/admin/web/")
            #expect(api.status == .unauthorized)
            let browser = try await hub.request(.get, "/u/admin/web/health?a=b", headers: [.accept: "text/html,application/xhtml+xml"])
            #expect(browser.status == .found)
            #expect(browser.headers[.location] == "/login?next=/u/admin/web/health?a%3Db")

            // Admins see everyone's: bob's project, opened by the admin.
            try await hub.startProject("mine", template: "hello", owner: "bob", token: bob)
            #expect(try await hub.request(.get, "/u/bob/mine/", token: token).object["message"] as? String == "Hello from Flask bot of user bob!")
            #expect(try await hub.request(.get, "/u/bob/mine/", token: bob).status == .ok)
        }
    }

    /// With `adminAppAccess` off an admin is refused (403, saying why) at other users' apps,
    /// requests and WebSocket handshakes alike, and still opens their own and stops anyone's.
    @Test func adminsCanBeKeptOutOfUsersApps() async throws {
        try await Self.withActiveProject("hello", configure: { $0.adminAppAccess = false }) { hub, token, port in
            let bob = try await hub.createUser("bob", adminToken: token)
            try await hub.startProject("mine", template: "hello", owner: "bob", token: bob)
            let refused = try await hub.request(.get, "/u/bob/mine/", token: token)
            #expect(refused.status == .forbidden)
            #expect(refused.errorCode == "forbidden")
            #expect(refused.text.contains("ENVHUB_ADMIN_APP_ACCESS=false"), "\(refused.text)")
            let handshake = try await rawHTTPExchange(port: port, WebSocketTunnelTests.upgrade("/u/bob/mine/socket")
                .replacingOccurrences(of: "\r\n\r\n", with: "\r\nAuthorization: Bearer \(token)\r\n\r\n"))
            #expect(handshake.hasPrefix("HTTP/1.1 403"), "\(handshake)")

            #expect(try await hub.request(.get, "/u/bob/mine/", token: bob).status == .ok)
            #expect(try await hub.request(.get, "/u/admin/web/", token: token).status == .ok)
            #expect(try await hub.request(.get, "/u/admin/nothing/", token: bob).status == .notFound)
            let stop = try await hub.request(.post, "/api/users/bob/projects/mine/deactivate", token: token)
            #expect(stop.status == .accepted, "\(stop.text)")
        }
    }

    @Test func theAppSeesForwardedHeadersAndNeverTheHubsCredentials() async throws {
        try await Self.withActiveProject("probe") { hub, token, port in
            // Written by hand: client libraries set their own Connection header.
            let answer = try await rawHTTPExchange(port: port, """
                POST /u/admin/web/echo/x?q=1 HTTP/1.1\r
                Host: hub.example:8080\r
                Authorization: Bearer \(token)\r
                Cookie: envhub_session=secret; theme=dark\r
                Connection: close, X-Private\r
                X-Private: hop\r
                Keep-Alive: timeout=5\r
                X-Forwarded-For: 6.6.6.6\r
                Forwarded: for=6.6.6.6;proto=https\r
                Content-Length: 5\r
                \r
                hello
                """)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            let json = try #require(answer.range(of: "\r\n\r\n").map { answer[$0.upperBound...] })
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            #expect(seen["path"] as? String == "/echo/x?q=1")
            #expect(seen["received"] as? Int == 5)
            let headers = try #require(seen["headers"] as? [String: String])
            #expect(headers["authorization"] == nil)
            #expect(headers["cookie"] == "theme=dark")
            #expect(headers["x-private"] == nil, "\(headers)")
            #expect(headers["keep-alive"] == nil)
            #expect(headers["forwarded"] == nil, "a client's own claims go nowhere")
            #expect(headers["x-forwarded-prefix"] == "/u/admin/web")
            #expect(headers["x-forwarded-proto"] == "http")
            #expect(headers["x-forwarded-for"] == "127.0.0.1")
            #expect(headers["x-forwarded-host"] == "hub.example:8080")

            let redirect = try await hub.request(.get, "/u/admin/web/redirect", token: token)
            #expect(redirect.status == .found)
            #expect(redirect.headers[.location] == "/u/admin/web/target")
            #expect(try await hub.request(.get, "/u/admin/web/redirect-absolute", token: token).headers[.location] == "/u/admin/web/target")
            let cookies = try await hub.request(.get, "/u/admin/web/cookie", token: token).headers[values: .setCookie]
            #expect(cookies.contains("a=1; Path=/u/admin/web/"))
            #expect(cookies.contains("b=2"))
        }
    }

    @Test func serverSentEventsArriveAsSoonAsTheAppFlushesThem() async throws {
        try await Self.withActiveProject("probe") { hub, token, port in
            let gate = FileManager.default.temporaryDirectory.appendingPathComponent("envhub-sse-gate-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: gate) }
            let seen = NIOLockedValueBox("")
            // The second event only comes once the gate exists; the gate only opens once the
            // first event has arrived: a gateway that buffered would never get there.
            let text = try await EnvironmentStreamTests.stream(
                "http://127.0.0.1:\(port)/u/admin/web/sse?gate=\(gate.path)", token: token
            ) { text in
                if text.contains("data: one") && !FileManager.default.fileExists(atPath: gate.path) {
                    #expect(FileManager.default.createFile(atPath: gate.path, contents: Data()), "the gate opens")
                }
                seen.withLockedValue { $0 = text }
                return text.contains("data: two")
            }
            #expect(text.contains("data: one\n\ndata: two"))
        }
    }

    /// A real hub process, so that its memory is measured alone (the test process runs many
    /// hubs and tests at once).
    @Test func largeBodiesStreamBothWaysWithoutFillingMemory() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let templates = try TestHub.templateDirectory("probe", Self.appTemplate)
            defer { try? FileManager.default.removeItem(at: templates) }
            let hub = try EnvHubProcess(["serve", "--port", "0", "--stop-environments-on-exit"], env: [
                "ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_ADMIN_PASSWORD": "admin-password-1",
                "ENVHUB_TEMPLATES_DIR": templates.path,
            ])
            defer { hub.kill() }
            var api = HubRestartTests.API(port: try await hub.waitForPort())
            api.token = try await api.call("POST", "/api/auth/login", ["username": "admin", "password": "admin-password-1"])
                .object["token"] as? String ?? ""
            try await api.call("POST", "/api/users/admin/projects", ["name": "web", "template": "probe"])
            try await api.call("POST", "/api/users/admin/projects/web/activate")
            _ = try await waitFor("web to be active") { try await api.state("web") == "active" ? true : nil }
            let base = "http://127.0.0.1:\(api.port)/u/admin/web"
            let before = Self.residentBytes(of: hub.pid)
            var peak = before

            let gibibyte = 1 << 30
            var download = HTTPClientRequest(url: "\(base)/bytes?n=\(gibibyte)")
            download.headers.add(name: "Authorization", value: "Bearer \(api.token)")
            let response = try await HTTPClient.shared.execute(download, timeout: .seconds(300))
            #expect(response.status.code == 200)
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received % (32 << 20) < chunk.readableBytes { peak = max(peak, Self.residentBytes(of: hub.pid)) }
            }
            #expect(received == gibibyte)

            let size = 200 << 20
            var upload = HTTPClientRequest(url: "\(base)/upload")
            upload.method = .POST
            upload.headers.add(name: "Authorization", value: "Bearer \(api.token)")
            let chunk = ByteBuffer(repeating: UInt8(ascii: "y"), count: 1 << 20)
            let sent = NIOLockedValueBox((count: 0, peak: peak))
            let pid = hub.pid
            let chunks = AsyncStream<ByteBuffer> {
                sent.withLockedValue { sent in
                    guard sent.count < 200 else { return nil }
                    sent.count += 1
                    if sent.count % 32 == 0 { sent.peak = max(sent.peak, Self.residentBytes(of: pid)) }
                    return chunk
                }
            }
            upload.body = .stream(chunks, length: .known(Int64(size)))
            let uploaded = try await HTTPClient.shared.execute(upload, timeout: .seconds(300))
            let answer = try JSONSerialization.jsonObject(with: Data((try await uploaded.body.collect(upTo: 1 << 16)).readableBytesView))
            #expect((answer as? [String: Int])?["received"] == size)
            peak = max(peak, sent.withLockedValue { $0.peak }, Self.residentBytes(of: hub.pid))
            #expect(peak - before < 50 << 20, "the hub grew by \((peak - before) >> 20) MiB")
            hub.terminate()
            #expect(try await hub.waitForExit() == 0)
        }
    }

    @Test func aStoppedEnvironmentSaysSoToBrowsersAndAPIs() async throws {
        let directory = try TestHub.templateDirectory("probe", Self.appTemplate)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: { $0.templatesDirectory = directory.path }) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            let api = try await hub.request(.get, "/u/admin/web/", token: token)
            #expect(api.status == .serviceUnavailable)
            #expect(api.object["state"] as? String == "inactive")
            #expect((api.object["error"] as? [String: Any])?["code"] as? String == "environment_not_running")
            let page = try await hub.request(.get, "/u/admin/web/", token: token, headers: [.accept: "text/html"])
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.text.contains("admin/web is <span id=\"state\">inactive</span>"))
            #expect(page.text.contains("<button id=\"start\""))
            #expect(page.text.contains("data-auto-start=\"true\""), "the owner's page starts the environment itself")
            // Nothing inline: the page carries the web UI's policy, its script and style are assets.
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(page.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
            #expect(page.text.contains("<script type=\"module\" src=\"/assets/stopped.js\"></script>"))
            #expect(!page.text.contains("<style"))
            for asset in ["/assets/stopped.js", "/assets/stopped.css"] {
                #expect(try await hub.request(.get, asset).status == .ok, "\(asset)")
            }

            // Not when the owner turned auto-start off, and never for an admin visiting.
            let patched = try await hub.request(.patch, "/api/users/admin/projects/web", token: token, json: ["autoStart": false])
            #expect(patched.object["autoStart"] as? Bool == false)
            let manual = try await hub.request(.get, "/u/admin/web/", token: token, headers: [.accept: "text/html"])
            #expect(manual.text.contains("data-auto-start=\"false\""))
            #expect(manual.text.contains("<button id=\"start\""))
            let bob = try await hub.createUser("bob", adminToken: token)
            _ = try await hub.request(.post, "/api/users/bob/projects", token: bob, json: ["name": "mine", "template": "hello"])
            #expect(try await hub.request(.get, "/api/users/bob/projects/mine", token: bob).object["autoStart"] as? Bool == true)
            let visited = try await hub.request(.get, "/u/bob/mine/", token: token, headers: [.accept: "text/html"])
            #expect(visited.status == .ok)
            #expect(visited.text.contains("data-auto-start=\"false\""))
        }
    }

    @Test func aDesktopOpensNoVNCWithItsOwnPath() async throws {
        try await Self.withActiveProject("desktop", name: "desk") { hub, token, _ in
            let root = try await hub.request(.get, "/u/admin/desk/", token: token)
            #expect(root.status == .found)
            #expect(root.headers[.location] == "/u/admin/desk/vnc.html?autoconnect=1&resize=remote&path=u/admin/desk/websockify")
            let page = try await hub.request(.get, "/u/admin/desk/vnc.html", token: token)
            #expect(page.status == .ok)
            #expect(page.text.contains("noVNC"))
            // noVNC's WebSocket, through the gateway to websockify and on to x11vnc.
            let port = try #require(hub.client.port)
            let opening = try await rawWebSocketOpening(
                port: port, path: "/u/admin/desk/websockify", protocol: "binary", headers: ["Authorization: Bearer \(token)"])
            #expect(opening.hasPrefix("HTTP/1.1 101"), "\(opening)")
            #expect(opening.lowercased().contains("sec-websocket-protocol: binary"))
            #expect(opening.contains("RFB 003.008"))
            // Without a session there is no tunnel, only the gateway's 401.
            let refused = try await rawWebSocketOpening(port: port, path: "/u/admin/desk/websockify", protocol: "binary") {
                $0.contains("\r\n\r\n")
            }
            #expect(refused.hasPrefix("HTTP/1.1 401"), "\(refused)")
        }
    }

    /// The idle timeout of the culler tests. The culler goes by the clock: a test process that
    /// stalls for longer than this on a loaded machine stops using its environment, which is
    /// then rightly stopped. 4 s was too short on 2 shared cores under the whole suite.
    static let cullerTimeout: Duration = .seconds(8)

    /// Traffic through the gateway is use: the culler leaves the environment alone while it
    /// lasts (two and a half idle timeouts here), and stops it once it ends.
    @Test func gatewayTrafficKeepsTheIdleCullerAway() async throws {
        try await TestHub.run(configure: {
            $0.idleTimeout = Self.cullerTimeout
            $0.healthCheckInterval = .milliseconds(100)
        }, live: true) { hub in
            let token = try await hub.adminToken()
            try await hub.startProject("web", template: "hello", token: token)
            let project = try #require(try await hub.adminProject("web"))
            let busyUntil = ContinuousClock.now + Self.cullerTimeout * 2.5
            while ContinuousClock.now < busyUntil {
                #expect(try await hub.request(.get, "/u/admin/web/", token: token).status == .ok)
                #expect(try await hub.hub.store.project(id: project.id)?.state == .active)
                try await Task.sleep(for: .milliseconds(200))
            }
            // Watch through the store: the API would count as use.
            try await waitFor("the environment to be stopped once unused") {
                try await hub.hub.store.project(id: project.id)?.state == .inactive ? true : nil
            }
        }
    }

    /// An open WebSocket is use even when nothing passes, like a noVNC tab left open.
    @Test func anOpenWebSocketKeepsTheIdleCullerAway() async throws {
        try await TestHub.run(configure: {
            $0.idleTimeout = Self.cullerTimeout
            $0.healthCheckInterval = .milliseconds(100)
        }, live: true) { hub in
            let token = try await hub.adminToken()
            try await hub.startProject("desk", template: "desktop", token: token)
            let project = try #require(try await hub.adminProject("desk"))
            let socket = try RawSocket(port: try #require(hub.client.port))
            socket.openWebSocket(path: "/u/admin/desk/websockify", protocol: "binary", headers: ["Authorization: Bearer \(token)"])
            #expect(try await socket.receive { $0.contains("RFB ") }.contains("RFB 003.008"))
            // Nothing more is sent: x11vnc waits for the client's version.
            let openUntil = ContinuousClock.now + Self.cullerTimeout * 2.5
            while ContinuousClock.now < openUntil {
                #expect(try await hub.hub.store.project(id: project.id)?.state == .active)
                try await Task.sleep(for: .milliseconds(200))
            }
            socket.close()
            try await waitFor("the environment to be stopped once the socket is gone") {
                try await hub.hub.store.project(id: project.id)?.state == .inactive ? true : nil
            }
        }
    }

    static func residentBytes(of pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
}
