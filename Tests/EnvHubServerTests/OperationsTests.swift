import EnvHubCore
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

@Suite struct OperationsTests {
    @Test(arguments: TestDatabase.allCases)
    func probesAndStatusReportTheStore(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            #expect(try await hub.request(.get, "/healthz").object["status"] as? String == "ok")
            #expect(try await hub.request(.get, "/readyz").object["status"] as? String == "ready")
            let status = try await hub.request(.get, "/api/status").object
            let store = status["store"] as? [String: Any]
            #expect(store?["kind"] as? String == database.rawValue)
            #expect(store?["healthy"] as? Bool == true)
            #expect(status["version"] as? String == EnvHubVersion.current)
            #expect((status["runtime"] as? [String: Any])?["kind"] as? String != nil)
        }
    }

    @Test func statsCountUsersAndProjectsByState() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            for name in ["a", "b", "c"] {
                _ = try await hub.request(.post, "/api/users/alice/projects", token: alice, json: ["name": name, "template": "hello"])
            }
            let stats = try await hub.request(.get, "/api/stats", token: alice).object
            #expect(stats["users"] as? Int == 2)
            let projects = stats["projects"] as? [String: Any]
            #expect(projects?["total"] as? Int == 3)
            #expect((projects?["byState"] as? [String: Int])?["inactive"] == 3)
            #expect((projects?["byState"] as? [String: Int])?["active"] == 0)
        }
    }

    @Test func metricsExposeRequestDurationsAndGauges() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            _ = try await hub.request(.get, "/api/users/admin/projects", token: admin)
            _ = try await hub.request(.get, "/no/such/path")
            let response = try await hub.request(.get, "/metrics")
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = response.text
            #expect(text.contains(#"envhub_http_request_duration_seconds_count{route="/api/users/{user}/projects",method="GET",status="200"} 1"#))
            #expect(text.contains(#"envhub_http_request_duration_seconds_count{route="/api/auth/login",method="POST",status="200"} 1"#))
            #expect(text.contains(#"route="unmatched",method="GET",status="404""#))
            #expect(text.contains("envhub_users 1"))
            #expect(text.contains(#"envhub_projects{state="inactive"} 0"#))
            for gauge in ["envhub_gateway_open_exchanges", "envhub_agent_replies_active", "envhub_chat_users_online"] {
                #expect(text.contains("\n\(gauge) 0.0\n"), "\(gauge) in \(text)")
            }
        }
    }

    @Test func templatesListTheFiveBuiltInOnes() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let response = try await hub.request(.get, "/api/templates", token: token)
            let templates = try #require(response.object["templates"] as? [[String: Any]])
            #expect(Set(templates.compactMap { $0["name"] as? String }) == ["hello", "desktop", "agent", "athlete", "data"])
            let data = try #require(templates.first { $0["name"] as? String == "data" })
            let components = try #require(data["components"] as? [[String: Any]])
            #expect(components.count == 2)
            #expect(components.contains { $0["volume"] != nil })
            #expect(components.contains { $0["autoscale"] != nil })
            let agent = try #require(templates.first { $0["name"] as? String == "agent" })
            #expect(agent["messagePath"] as? String == "/reply")
        }
    }

    @Test func templatesFromADirectoryJoinTheCatalogue() async throws {
        let directory = try TestHub.templateDirectory("notebook", """
            name: notebook
            title: Notebook
            components:
              - name: app
                command: ["notebook"]
                image: example/notebook:1
                port: 8888
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: { $0.templatesDirectory = directory.path }) { hub in
            #expect(hub.hub.templates.templates.count == 6)
            let token = try await hub.adminToken()
            let created = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "nb", "template": "notebook"])
            #expect(created.status == .created)
        }
    }

    @Test func aMalformedTemplateStopsStartUpNamingFileLineAndField() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("broken.yaml")
        try "name: broken\ntitle: Broken\ncomponents:\n  - name: app\n    command: [x]\n    image: x\n    port: many\n"
            .write(to: file, atomically: true, encoding: .utf8)
        var config = AppConfig()
        config.templatesDirectory = directory.path
        config.dataDirectory = directory.appendingPathComponent("data").path
        await #expect(throws: TemplateError(file: file.path, line: 7, field: "components[0].port", message: "must be an integer")) {
            _ = try await buildHub(config, logger: quietLogger)
        }
    }

    @Test func theFirstAdminIsAnnouncedOnceWithAGeneratedPassword() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let announcements = AnnouncementLog()
            var config = AppConfig()
            config.dataDirectory = location.dataDirectory
            config.bcryptCost = 4
            config.announce = { announcements.append($0) }
            for _ in 0..<2 {
                let hub = try await buildHub(config, logger: quietLogger)
                try await hub.application.test(.router) { _ in }
            }
            let messages = announcements.messages
            #expect(messages.count == 1)
            let password = try #require(messages.first?.split(separator: "\n").first { $0.contains("password:") }?
                .split(separator: " ").last.map(String.init))
            #expect(password.count == 20)
            let hub = try await buildHub(config, logger: quietLogger)
            try await hub.application.test(.router) { client in
                let body = try JSONSerialization.data(withJSONObject: ["username": "admin", "password": password])
                let response = try await client.execute(uri: "/api/auth/login", method: .post, body: ByteBuffer(bytes: body))
                #expect(response.status == .ok)
            }
        }
    }
}

final class AnnouncementLog: Sendable {
    private let storage = NIOLockedValueBox<[String]>([])
    func append(_ message: String) { storage.withLockedValue { $0.append(message) } }
    var messages: [String] { storage.withLockedValue { $0 } }
}
