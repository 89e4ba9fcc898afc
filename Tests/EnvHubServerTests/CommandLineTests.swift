import EnvHubTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import Testing

/// The `envhub` executable, run as a real process against real stores.
@Suite(.serialized) struct CommandLineTests {
    static let binary = envhubBinary

    @Test(arguments: TestDatabase.allCases)
    func usersAreManagedAgainstTheSameStore(_ database: TestDatabase) async throws {
        try await database.withLocation { location async throws in
            let env = Self.environment(location)
            let add = try await EnvHubProcess.run(["user", "add", "carol", "--admin", "--password-stdin"], env: env, stdin: "carol-password\n")
            #expect(add.status == 0, "\(add.output)")
            #expect(add.output.contains("created admin carol"))
            let again = try await EnvHubProcess.run(["user", "add", "carol", "--password-stdin"], env: env, stdin: "carol-password\n")
            #expect(again.status != 0)
            #expect(again.output.contains("already exists"))
            let bad = try await EnvHubProcess.run(["user", "add", "Bad_Name", "--password-stdin"], env: env, stdin: "password-123\n")
            #expect(bad.status != 0)
            #expect(bad.output.contains("user name may contain only lowercase letters"))
            let short = try await EnvHubProcess.run(["user", "add", "dave", "--password-stdin"], env: env, stdin: "short\n")
            #expect(short.status != 0)
            #expect(short.output.contains("at least 8 characters"))
            let list = try await EnvHubProcess.run(["user", "list"], env: env)
            #expect(list.output.split(separator: "\n").contains { $0.hasPrefix("carol") && $0.contains("admin") })
            let passwd = try await EnvHubProcess.run(["user", "passwd", "carol", "--password-stdin"], env: env, stdin: "new-carol-password\n")
            #expect(passwd.status == 0, "\(passwd.output)")
            let missing = try await EnvHubProcess.run(["user", "passwd", "nobody", "--password-stdin"], env: env, stdin: "new-carol-password\n")
            #expect(missing.status != 0)
            let migrate = try await EnvHubProcess.run(["migrate"], env: env)
            #expect(migrate.output.contains("up to date"))
        }
    }

    @Test func withoutATerminalThePasswordMustComeFromStdin() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let result = try await EnvHubProcess.run(["user", "add", "erin"], env: Self.environment(location), stdin: "")
            #expect(result.status != 0)
            #expect(result.output.contains("--password-stdin"))
        }
    }

    /// A bad setting stops `serve` before it opens the store or a port, and says which and why.
    @Test func serveRefusesBadSettings() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let cases: [(arguments: [String], variable: (String, String)?, says: String)] = [
                (["serve", "--chat-flush-interval", "5000"], nil, "chat flush interval"),
                (["serve"], ("ENVHUB_CHAT_FLUSH_INTERVAL", "-3"), "chat flush interval"),
                (["serve", "--client-idle-timeout", "soon"], nil, "client idle timeout"),
                (["serve"], ("ENVHUB_CLIENT_IDLE_TIMEOUT", "-1m"), "client idle timeout"),
                (["serve", "--trusted-proxies", "10.0.0.0/33"], nil, "trusted proxies: '10.0.0.0/33' is not an IP address"),
                (["serve"], ("ENVHUB_TRUSTED_PROXIES", "10.0.0.1, ingress.local"), "trusted proxies: 'ingress.local'"),
                (["serve"], ("ENVHUB_ADMIN_APP_ACCESS", "maybe"), "ENVHUB_ADMIN_APP_ACCESS must be true or false"),
                (["serve", "--apps-url", "http://apps.test"], nil, "--apps-url needs --public-url"),
                (["serve", "--public-url", "http://hub.test"], nil, "--public-url is used only with --apps-url"),
                (["serve", "--apps-url", "http://apps.test/x", "--public-url", "http://hub.test"], nil,
                 "the apps URL 'http://apps.test/x' must be http:// or https://"),
                (["serve", "--public-url", "http://alice.apps.test"], ("ENVHUB_APPS_URL", "http://apps.test"),
                 "must not be the apps URL's host or a subdomain of it that names a user"),
            ]
            for (arguments, variable, says) in cases {
                var env = Self.environment(location)
                env["ENVHUB_PORT"] = "0"
                if let (name, value) = variable { env[name] = value }
                let result = try await EnvHubProcess.run(arguments, env: env)
                #expect(result.status != 0)
                #expect(result.output.contains(says), "\(result.output)")
                #expect(!result.output.contains("listening on"))
            }
        }
    }

    @Test func templateListShowsTheCatalogue() async throws {
        let result = try await EnvHubProcess.run(["template", "list"], env: [:])
        #expect(result.status == 0)
        for name in ["hello", "desktop", "agent", "athlete", "data"] {
            #expect(result.output.contains("\n\(name) "), "\(name) missing from: \(result.output)")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func serveAnnouncesTheFirstAdminOnceAndStopsOnSIGTERM(_ database: TestDatabase) async throws {
        try await database.withLocation { location async throws in
            let env = Self.environment(location)
            for start in 0..<2 {
                let server = try EnvHubProcess(["serve", "--port", "0"], env: env)
                defer { server.kill() }
                let port = try await server.waitForPort()
                let ready = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/readyz")!)
                #expect((ready.1 as? HTTPURLResponse)?.statusCode == 200)
                let announced = server.output.contains("password: ")
                #expect(announced == (start == 0), "start \(start): \(server.output)")
                server.terminate()
                #expect(try await server.waitForExit() == 0, "\(server.output)")
            }
        }
    }

    /// Admins' way into users' apps is on unless the flag or the variable turns it off, as
    /// `/api/status` (which the web UI reads) says.
    @Test func serveKeepsAdminsOutOfUsersAppsWhenTold() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let runs: [(arguments: [String], variable: String?, access: Bool)] = [
                (["serve", "--port", "0"], nil, true),
                (["serve", "--port", "0", "--no-admin-app-access"], nil, false),
                (["serve", "--port", "0"], "false", false),
                (["serve", "--port", "0"], "true", true),
            ]
            for (arguments, variable, access) in runs {
                var env = Self.environment(location)
                if let variable { env["ENVHUB_ADMIN_APP_ACCESS"] = variable }
                let server = try EnvHubProcess(arguments, env: env)
                defer { server.kill() }
                let port = try await server.waitForPort()
                let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/api/status")!)
                let status = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                #expect(status?["adminAppAccess"] as? Bool == access, "\(arguments) \(variable ?? "-")")
                server.terminate()
                #expect(try await server.waitForExit() == 0, "\(server.output)")
            }
        }
    }

    @Test func serveServesAppsOnOriginsOfTheirOwnWhenTold() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let runs: [(arguments: [String], variables: [String: String], appsURL: String?)] = [
                (["serve", "--port", "0"], [:], nil),
                (["serve", "--port", "0", "--apps-url", "https://Apps.Example.net:443", "--public-url", "https://hub.example.com"], [:],
                 "https://apps.example.net"),
                (["serve", "--port", "0"], ["ENVHUB_APPS_URL": "http://apps.test:8080", "ENVHUB_PUBLIC_URL": "http://hub.test:8080"],
                 "http://apps.test:8080"),
            ]
            for (arguments, variables, appsURL) in runs {
                let server = try EnvHubProcess(arguments, env: Self.environment(location).merging(variables) { $1 })
                defer { server.kill() }
                let port = try await server.waitForPort()
                let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/api/status")!)
                let status = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                #expect(status?["appsURL"] as? String == appsURL, "\(arguments) \(variables)")
                server.terminate()
                #expect(try await server.waitForExit() == 0, "\(server.output)")
            }
        }
    }

    /// A PostgreSQL server that is down is waited for (a minute), saying so, and a stop asked
    /// for meanwhile is obeyed at once; what waiting cannot mend (no such database) fails at once.
    @Test func serveWaitsForADatabaseThatIsDownAndStopsWhenTold() async throws {
        try await TestDatabase.postgres.withLocation { location async throws in
            var env = Self.environment(location)
            env["ENVHUB_DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/envhub?sslmode=disable"
            let waiting = try EnvHubProcess(["serve", "--port", "0"], env: env)
            defer { waiting.kill() }
            try await waiting.waitForOutput("waiting for the database")
            #expect(waiting.output.contains("the database at 127.0.0.1:1 cannot be reached: "), "\(waiting.output)")
            #expect(waiting.output.contains("Connection refused"), "\(waiting.output)")
            waiting.terminate()
            #expect(try await waiting.waitForExit(timeout: .seconds(15)) == 0, "\(waiting.output)")
            #expect(waiting.output.contains("envhub stopped before it was ready"), "\(waiting.output)")
            #expect(!waiting.output.contains("listening on"))

            let url = try #require(location.databaseURL)
            var missing = try #require(URLComponents(string: url))
            missing.path = "/envhub_missing"
            env["ENVHUB_DATABASE_URL"] = try #require(missing.string)
            let refused = try await EnvHubProcess.run(["serve", "--port", "0"], env: env)
            #expect(refused.status != 0)
            #expect(refused.output.contains(#"cannot be reached: database "envhub_missing" does not exist"#), "\(refused.output)")
            #expect(!refused.output.contains("waiting for the database"), "\(refused.output)")
        }
    }

    @Test func workloadsRunAsTheirOwnProcesses() async throws {
        let process = try EnvHubProcess(["workload", "hello"], env: ["PORT": "0", "USER_ID": "carol"])
        defer { process.kill() }
        let port = try await process.waitForPort()
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/")!)
        #expect(String(decoding: data, as: UTF8.self) == #"{"message":"Hello from Flask bot of user carol!"}"#)
        process.terminate()
        #expect(try await process.waitForExit() == 0)

        let unknown = try await EnvHubProcess.run(["workload", "nope"], env: [:])
        #expect(unknown.status != 0)
        #expect(unknown.output.contains("choose one of hello, athlete, agent"))
    }

    @Test func serveOnKubernetesChecksTheClusterBeforeItStarts() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let directory = URL(fileURLWithPath: location.dataDirectory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            @Sendable func kubeconfig(_ server: String) throws -> [String: String] {
                let file = directory.appendingPathComponent("kubeconfig-\(UUID().uuidString)")
                try """
                    apiVersion: v1
                    kind: Config
                    clusters: [{name: c, cluster: {server: "\(server)"}}]
                    users: [{name: u, user: {token: t0ken}}]
                    contexts: [{name: x, context: {cluster: c, user: u}}]
                    current-context: x
                    """.write(to: file, atomically: true, encoding: .utf8)
                return Self.environment(location).merging(["KUBECONFIG": file.path, "KUBECONFIG_BASE64": ""]) { $1 }
            }
            let serve = ["serve", "--runtime", "kubernetes", "--port", "0"]

            let missing = try await EnvHubProcess.run(serve, env: Self.environment(location).merging(
                ["KUBECONFIG": "/nonexistent/kubeconfig", "KUBECONFIG_BASE64": ""]) { $1 })
            #expect(missing.status != 0)
            #expect(missing.output.contains("Kubernetes configuration from KUBECONFIG=/nonexistent/kubeconfig cannot be read"), "\(missing.output)")

            let unreachable = try await EnvHubProcess.run(serve, env: try kubeconfig("http://127.0.0.1:1"))
            #expect(unreachable.status != 0)
            #expect(unreachable.output.contains("the Kubernetes API server at http://127.0.0.1:1 (configuration from KUBECONFIG="), "\(unreachable.output)")

            let wrong = try await EnvHubProcess.run(["serve", "--runtime", "elsewhere"], env: Self.environment(location))
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("runtime 'elsewhere' is not local or kubernetes"))

            let api = FakeKubernetesAPI()
            try await api.run { port in
                let hub = try EnvHubProcess(serve, env: try kubeconfig("http://127.0.0.1:\(port)"))
                defer { hub.kill() }
                _ = try await hub.waitForPort()
                #expect(hub.output.contains("environments run on Kubernetes"), "\(hub.output)")
                #expect(api.authorizations.contains("Bearer t0ken"))
                hub.terminate()
                #expect(try await hub.waitForExit() == 0, "\(hub.output)")
            }
        }
    }

    static func environment(_ location: TestDatabase.Location) -> [String: String] {
        var env = ["ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_LOG_LEVEL": "info"]
        if let url = location.databaseURL { env["ENVHUB_DATABASE_URL"] = url }
        return env
    }
}

/// A running `envhub` process whose stdout and stderr are collected together.
final class EnvHubProcess: Sendable {
    private let process: SpawnedProcess

    init(_ arguments: [String], env: [String: String], stdin: String? = nil) throws {
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ENVHUB_") }.merging(env) { $1 }
        process = try SpawnedProcess(CommandLineTests.binary.path, arguments, environment: environment, stdin: stdin)
    }

    var output: String { process.output }

    static func run(_ arguments: [String], env: [String: String], stdin: String? = nil) async throws -> (status: Int32, output: String) {
        let process = try EnvHubProcess(arguments, env: env, stdin: stdin)
        let status = try await process.waitForExit()
        return (status, process.output)
    }

    /// The port from "listening on 127.0.0.1:PORT" in the log.
    func waitForPort(timeout: Duration = .seconds(60)) async throws -> Int {
        try await waitFor(timeout: timeout, "the server to listen") {
            guard let range = self.output.range(of: "listening on 127.0.0.1:") else { return nil }
            return Int(self.output[range.upperBound...].prefix { $0.isNumber })
        }
    }

    func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async throws {
        try await waitFor(timeout: timeout, "'\(text)' in the output") { self.output.contains(text) ? true : nil }
    }

    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await waitFor(timeout: timeout, "the process to exit") { self.process.exitStatus() }
    }

    func terminate() { process.signal(SIGTERM) }

    var pid: Int32 { process.pid }

    func kill() {
        if process.exitStatus() == nil { process.signal(SIGKILL) }
    }

    private func waitFor<T>(timeout: Duration, _ what: String, _ probe: () -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = probe() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("timed out waiting for \(what); output so far:\n\(output)")
    }
}
