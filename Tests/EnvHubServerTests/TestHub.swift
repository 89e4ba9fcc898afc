import EnvHubCore
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// A hub on a fresh database, driven through Hummingbird's router test client.
struct TestHub {
    static let adminPassword = "admin-password-1"

    let client: any TestClientProtocol
    let hub: Hub

    /// Builds a hub (cheap bcrypt, known admin password) on a fresh database and runs `body` against it.
    static func run(
        on database: TestDatabase = .sqlite,
        configure: @escaping @Sendable (inout AppConfig) -> Void = { _ in },
        live: Bool = false,
        _ body: @escaping @Sendable (TestHub) async throws -> Void
    ) async throws {
        try await database.withLocation { location async throws in
            try await run(at: location, configure: configure, live: live, body)
        }
    }

    /// Builds a hub on an existing database: two of them on one PostgreSQL are two replicas.
    static func run(
        at location: TestDatabase.Location,
        configure: @escaping @Sendable (inout AppConfig) -> Void = { _ in },
        keepEnvironments: Bool = false,
        live: Bool = false,
        _ body: @escaping @Sendable (TestHub) async throws -> Void
    ) async throws {
        let label = "hub #\(hubNumbers.add(1, ordering: .relaxed).newValue) on \(location.databaseURL == nil ? "SQLite" : "PostgreSQL")"
        try await TestProgress.run(label) {
            TestProgress.note("being built")
            var config = AppConfig()
            config.databaseURL = location.databaseURL
            config.dataDirectory = location.dataDirectory
            config.adminPassword = adminPassword
            config.bcryptCost = 4
            config.announce = { _ in }
            config.envhubBinary = envhubBinary.path
            config.stopGrace = .seconds(5)
            if live { config.port = 0 }
            // Errors show in the test output (a normal run has none): a service the hub had to
            // stop without (`BoundedShutdown`), a request that failed inside the hub.
            // (`buildHub` sets the logger's level from the configuration.)
            config.logLevel = .error
            configure(&config)
            let logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
            let hub = try await buildHub(config, logger: logger)
            TestProgress.note("starting")
            try await hub.application.testStoppingGracefully(live ? .live : .router) { client in
                TestProgress.note("running the test")
                do {
                    try await body(TestHub(client: client, hub: hub))
                } catch {
                    TestProgress.note("stopping its environments after an error")
                    try await hub.stopAllEnvironments()
                    throw error
                }
                // Environments outlive a hub by design; tests leave none behind unless they hand
                // them to another hub.
                TestProgress.note("stopping its environments")
                if !keepEnvironments { try await hub.stopAllEnvironments() }
                TestProgress.note("stopping its services")
            }
        }
    }

    private static let hubNumbers = Atomic<Int>(0)

    /// A fresh directory holding one template file, for `templatesDirectory`; the caller removes it.
    static func templateDirectory(_ name: String, _ yaml: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try yaml.write(to: directory.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        return directory
    }

    /// Polls `probe` until it holds, failing after `timeout`.
    static func eventually(
        _ what: String, timeout: Duration = .seconds(10), _ probe: @Sendable () async throws -> Bool
    ) async throws {
        TestProgress.note("waiting for \(what)")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await probe() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what)")
    }

    /// Sends a request; `json` is encoded as the body, `token` as a Bearer header.
    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil,
        rawBody: String? = nil, headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        } else if let rawBody {
            body = ByteBuffer(string: rawBody)
        }
        TestProgress.note("waiting for the answer to \(method) \(path)")
        defer { TestProgress.note("answered: \(method) \(path)") }
        return try await client.execute(uri: path, method: method, headers: headers, body: body)
    }

    /// Signs in and returns the token.
    func login(_ username: String, _ password: String) async throws -> String {
        let response = try await request(.post, "/api/auth/login", json: ["username": username, "password": password])
        #expect(response.status == .ok, "login of \(username): \(response.text)")
        guard let token = response.object["token"] as? String else { throw TestSetupError("no token for \(username)") }
        return token
    }

    func adminToken() async throws -> String { try await login("admin", Self.adminPassword) }

    /// The admin's project `name` as stored (read from the store: asking the API counts as use).
    func adminProject(_ name: String) async throws -> Project? {
        try await hub.store.project(owner: UserName(unchecked: "admin"), name: ProjectName(unchecked: name))
    }

    /// Creates `owner`'s project `name` from `template`, starts it and waits until it is
    /// active; returns the project as the API then shows it.
    @discardableResult
    func startProject(_ name: String, template: String, owner: String = "admin", token: String) async throws -> [String: Any] {
        let path = "/api/users/\(owner)/projects"
        let created = try await request(.post, path, token: token, json: ["name": name, "template": template])
        #expect(created.status == .created, "create \(owner)/\(name): \(created.text)")
        let activated = try await request(.post, "\(path)/\(name)/activate", token: token)
        #expect(activated.status == .accepted, "activate \(owner)/\(name): \(activated.text)")
        return try await LifecycleTests.waitForState(self, token, "active", path: "\(path)/\(name)")
    }

    /// Creates a user through the admin API and returns their token.
    func createUser(_ name: String, password: String = "password-123", admin: Bool = false, adminToken: String) async throws -> String {
        let response = try await request(
            .post, "/api/users", token: adminToken, json: ["username": name, "password": password, "admin": admin])
        #expect(response.status == .created, "create \(name): \(response.text)")
        return try await login(name, password)
    }
}

extension TestResponse {
    /// The names in a `{"projects": [...]}` answer.
    var projectNames: [String] {
        (object["projects"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
    }

    var text: String { String(buffer: body) }

    /// The body as a JSON object (empty when it is not one).
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    /// The `error.code` of an error body.
    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (object["error"] as? [String: Any])?["message"] as? String }
}
