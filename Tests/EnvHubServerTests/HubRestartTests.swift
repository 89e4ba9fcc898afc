import EnvHubRuntime
import EnvHubTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// A real hub process killed with SIGKILL while environments run and one is still starting.
@Suite(.serialized) struct HubRestartTests {
    struct API {
        let port: Int
        var token = ""

        @discardableResult
        func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> (status: Int, object: [String: Any]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.httpMethod = method
            if !token.isEmpty { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
        }

        func state(_ name: String) async throws -> String? {
            try await call("GET", "/api/users/admin/projects/\(name)").object["state"] as? String
        }
    }

    /// Living processes whose command line contains `marker`, started in `directory` (or anywhere).
    static func processes(containing marker: String, in directory: String = "/") -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) ?? ""
            return command.contains(marker) && cwd.hasPrefix(directory) && ProcessTable.entry(pid: pid)?.isAlive == true
        }
    }

    /// A hub whose start fails (its database does not exist) ends with the error: the
    /// services that wait for the store stop waiting, instead of keeping the hub from stopping.
    @Test func aHubWhoseStartFailsStopsWithTheError() async throws {
        try await TestDatabase.postgres.withLocation { location async throws in
            let existing = try #require(location.databaseURL)
            var missing = try #require(URLComponents(string: existing))
            missing.path = "/envhub_missing"
            let url = missing.string
            await #expect {
                try await TestHub.run(at: location, configure: { $0.databaseURL = url }) { _ in
                    Issue.record("the hub started without its database")
                }
            } throws: { error in
                "\(error)".contains(#"database "envhub_missing" does not exist"#)
            }
        }
    }

    @Test func environmentsSurviveAKilledHubAndAreNotDuplicated() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let marker = "slow-\(UUID().uuidString.prefix(8))"
            let templates = URL(fileURLWithPath: location.dataDirectory + "-templates")
            try FileManager.default.createDirectory(at: templates, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: templates) }
            try """
                name: slow
                title: Never ready
                startTimeoutSeconds: 600
                components:
                  - name: app
                    command: ["/bin/sh", "-c", "sleep 600; : \(marker)"]
                    image: unused
                    port: 8080
                """.write(to: templates.appendingPathComponent("slow.yaml"), atomically: true, encoding: .utf8)
            let env = ["ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_ADMIN_PASSWORD": "admin-password-1",
                       "ENVHUB_TEMPLATES_DIR": templates.path, "ENVHUB_LOG_LEVEL": "info"]

            var hub = try EnvHubProcess(["serve", "--port", "0"], env: env)
            var api = API(port: try await hub.waitForPort())
            api.token = try await api.call("POST", "/api/auth/login", ["username": "admin", "password": "admin-password-1"])
                .object["token"] as? String ?? ""
            let names = ["one", "two", "three"]
            for name in names + ["slow"] {
                try await api.call("POST", "/api/users/admin/projects", ["name": name, "template": name == "slow" ? "slow" : "hello"])
                #expect(try await api.call("POST", "/api/users/admin/projects/\(name)/activate").status == 202)
            }
            for name in names {
                _ = try await waitFor("\(name) to be active") { try await api.state(name) == "active" ? true : nil }
            }
            _ = try await waitFor("the slow component to run") { Self.processes(containing: marker).count == 1 ? true : nil }
            let helloBefore = Self.processes(containing: "workload\u{0}hello", in: location.dataDirectory).sorted()
            #expect(helloBefore.count == 3)

            kill(hub.pid, SIGKILL)
            _ = try await hub.waitForExit()
            hub = try EnvHubProcess(["serve", "--port", "0"], env: env)
            defer { hub.kill() }
            api = API(port: try await hub.waitForPort(), token: api.token)
            _ = try await waitFor("the slow project to be starting again") {
                Self.processes(containing: marker).count == 1 ? true : nil
            }
            for name in names {
                #expect(try await api.state(name) == "active")
            }
            // The same processes still serve: re-adopted, not restarted, none duplicated.
            #expect(Self.processes(containing: "workload\u{0}hello", in: location.dataDirectory).sorted() == helloBefore)
            #expect(Self.processes(containing: marker).count == 1)

            for name in names + ["slow"] {
                try await api.call("POST", "/api/users/admin/projects/\(name)/deactivate")
            }
            for name in names + ["slow"] {
                _ = try await waitFor("\(name) to stop") { try await api.state(name) == "inactive" ? true : nil }
            }
            #expect(Self.processes(containing: marker).isEmpty)
            hub.terminate()
            #expect(try await hub.waitForExit() == 0)
        }
    }

    /// SIGTERM keeps environments running for the next hub, unless asked to stop them.
    @Test func aGracefulStopLeavesEnvironmentsRunningUnlessToldToStopThem() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let env = ["ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_ADMIN_PASSWORD": "admin-password-1"]
            var hub = try EnvHubProcess(["serve", "--port", "0"], env: env)
            var api = API(port: try await hub.waitForPort())
            api.token = try await api.call("POST", "/api/auth/login", ["username": "admin", "password": "admin-password-1"])
                .object["token"] as? String ?? ""
            try await api.call("POST", "/api/users/admin/projects", ["name": "web", "template": "hello"])
            #expect(try await api.call("POST", "/api/users/admin/projects/web/activate").status == 202)
            _ = try await waitFor("web to be active") { try await api.state("web") == "active" ? true : nil }
            let running = Self.processes(containing: "workload\u{0}hello", in: location.dataDirectory)
            #expect(running.count == 1)

            hub.terminate()
            #expect(try await hub.waitForExit() == 0)
            #expect(Self.processes(containing: "workload\u{0}hello", in: location.dataDirectory) == running)

            hub = try EnvHubProcess(["serve", "--port", "0", "--stop-environments-on-exit"], env: env)
            defer { hub.kill() }
            api = API(port: try await hub.waitForPort(), token: api.token)
            // The first request after the restart already reaches the re-adopted environment.
            let first = try await api.call("GET", "/u/admin/web/")
            #expect(first.status == 200)
            #expect(first.object["message"] as? String == "Hello from Flask bot of user admin!")
            #expect(try await api.state("web") == "active")
            hub.terminate()
            #expect(try await hub.waitForExit() == 0)
            #expect(Self.processes(containing: "workload\u{0}hello", in: location.dataDirectory).isEmpty)

            hub = try EnvHubProcess(["serve", "--port", "0"], env: env)
            api = API(port: try await hub.waitForPort(), token: api.token)
            #expect(try await api.state("web") == "inactive")
            hub.terminate()
            #expect(try await hub.waitForExit() == 0)
        }
    }

    /// SIGTERM while the gateway relays: a connection between requests is closed at once, an
    /// answer in flight still arrives whole, and then the hub exits (on connections that
    /// started with a gateway request and with a hub request alike).
    @Test func aGracefulStopLetsTheGatewaysAnswersInFlightFinish() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let templates = try TestHub.templateDirectory("probe", GatewayTests.appTemplate)
            defer { try? FileManager.default.removeItem(at: templates) }
            let env = [
                "ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_ADMIN_PASSWORD": "admin-password-1",
                "ENVHUB_TEMPLATES_DIR": templates.path,
            ]
            let hub = try EnvHubProcess(["serve", "--port", "0", "--stop-environments-on-exit"], env: env)
            defer { hub.kill() }
            let port = try await hub.waitForPort()
            var api = API(port: port)
            api.token = try await api.call("POST", "/api/auth/login", ["username": "admin", "password": "admin-password-1"])
                .object["token"] as? String ?? ""
            try await api.call("POST", "/api/users/admin/projects", ["name": "web", "template": "probe"])
            #expect(try await api.call("POST", "/api/users/admin/projects/web/activate").status == 202)
            _ = try await waitFor("web to be active") { try await api.state("web") == "active" ? true : nil }

            // On the byte path from the start, and after a request lent to NIO's parser.
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(api.token)\r\n"
            let openings = [GatewayConnectionTests.Opening.none, .hubRequest]
            var idle: [RawSocket] = []
            for opening in openings {
                let socket = try RawSocket(port: port)
                socket.send("\(opening.text)GET /u/admin/web/echo HTTP/1.1\r\n\(fields)\r\n")
                let count = opening == .none ? 1 : 2
                #expect(GatewayConnectionTests.bodies(try await socket.receive { GatewayConnectionTests.bodies($0).count == count }).count == count)
                idle.append(socket)
            }
            // Event streams the app holds open until the gate file exists.
            let gate = URL(fileURLWithPath: location.dataDirectory).appendingPathComponent("gate").path
            var busy: [RawSocket] = []
            for opening in openings {
                let socket = try RawSocket(port: port)
                socket.send("\(opening.text)GET /u/admin/web/sse?gate=\(gate) HTTP/1.1\r\n\(fields)\r\n")
                #expect(try await socket.receive { $0.contains("data: one") }.contains("data: one"))
                busy.append(socket)
            }

            hub.terminate()
            let started = ContinuousClock.now
            for (opening, socket) in zip(openings, idle) {
                _ = try await socket.receive { _ in false }  // until the hub closes it
                #expect(ContinuousClock.now - started < .seconds(5), "\(opening): the idle connection was not closed")
                #expect(socket.closedByPeer, "\(opening)")
            }
            #expect(FileManager.default.createFile(atPath: gate, contents: Data()))
            for (opening, socket) in zip(openings, busy) {
                let stream = try await socket.receive { _ in false }  // the rest of the stream, until it ends
                #expect(stream.hasSuffix("data: one\n\ndata: two\n\n"), "\(opening): \(stream)")
            }
            #expect(try await hub.waitForExit() == 0)
        }
    }
}

