import EnvHubCore
import EnvHubRuntime
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

/// Activation and deactivation with real processes (the built envhub's `hello` workload).
@Suite struct LifecycleTests {
    static let project = "/api/users/admin/projects/web"

    /// Waits until the project reaches `state`, failing on `failed` unless that is the goal.
    static func waitForState(_ hub: TestHub, _ token: String, _ state: String, path: String = project) async throws -> [String: Any] {
        var seen: [String] = []  // each state seen, for the message when it never comes
        do {
            return try await waitFor("\(path) to be \(state)") { () async throws -> [String: Any]? in
                let object = try await hub.request(.get, path, token: token).object
                let now = "\(object["state"] ?? "?") (\(object["stateReason"] ?? ""))"
                if seen.last != now { seen.append(now) }
                if object["state"] as? String == "failed" && state != "failed" {
                    throw TestSetupError("the environment failed: \(object["stateReason"] ?? "")")
                }
                return object["state"] as? String == state ? object : nil
            }
        } catch let error as TestSetupError {
            throw TestSetupError("\(error); seen: \(seen.joined(separator: " → "))")
        }
    }

    static func record(_ hub: TestHub, _ name: String = "web") async throws -> EnvironmentRecord {
        let project = try #require(try await hub.adminProject(name))
        let json = try #require(try await hub.hub.store.runtimeRecord(projectID: project.id))
        return try JSONDecoder().decode(EnvironmentRecord.self, from: Data(json.utf8))
    }

    /// The record if there is one now, without failing the test when there is not.
    static func recordIfAny(_ hub: TestHub) async throws -> EnvironmentRecord? {
        guard let project = try await hub.adminProject("web"),
              let json = try await hub.hub.store.runtimeRecord(projectID: project.id) else { return nil }
        return try JSONDecoder().decode(EnvironmentRecord.self, from: Data(json.utf8))
    }

    static func get(_ port: Int, _ path: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(string: "http://127.0.0.1:\(port)\(path)")!), as: UTF8.self)
    }

    /// Deleting a user deletes their projects in the store; what runs for an active one is
    /// stopped first, not left running for no one.
    @Test func deletingAUserLeavesNoProcessOfTheirs() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            try await hub.startProject("web", template: "hello", owner: "alice", token: alice)
            let owner = try #require(UserName(rawValue: "alice"))
            let project = try #require(try await hub.hub.store.projects(ownedBy: owner).first)
            let json = try #require(try await hub.hub.store.runtimeRecord(projectID: project.id))
            let record = try JSONDecoder().decode(EnvironmentRecord.self, from: Data(json.utf8))
            let group = try #require(record.components[0].pid)
            #expect(!ProcessTable.members(ofGroup: group).isEmpty)

            #expect(try await hub.request(.delete, "/api/users/alice", token: admin).status == .noContent)
            #expect(ProcessTable.members(ofGroup: group).isEmpty, "the environment of a deleted user still runs")
            #expect(try await hub.hub.store.project(id: project.id) == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func activateRunsTheTemplateAndDeactivateLeavesNoProcess(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            let activated = try await hub.request(.post, "\(Self.project)/activate", token: token)
            #expect(activated.status == .accepted)
            #expect(activated.object["state"] as? String == "starting")
            _ = try await Self.waitForState(hub, token, "active")
            let record = try await Self.record(hub)
            #expect(try Self.get(try #require(record.exposedEndpoint?.port), "/") == #"{"message":"Hello from Flask bot of user admin!"}"#)
            // Activating again changes nothing.
            let again = try await hub.request(.post, "\(Self.project)/activate", token: token)
            #expect(again.status == .ok)
            #expect(again.object["state"] as? String == "active")
            // A running project keeps its name.
            let rename = try await hub.request(.patch, Self.project, token: token, json: ["name": "site"])
            #expect(rename.status == .conflict)

            let deactivated = try await hub.request(.post, "\(Self.project)/deactivate", token: token)
            #expect(deactivated.status == .accepted)
            #expect(deactivated.object["state"] as? String == "stopping")
            _ = try await Self.waitForState(hub, token, "inactive")
            #expect(ProcessTable.members(ofGroup: record.components[0].pid!).isEmpty)
            #expect(try await hub.request(.post, "\(Self.project)/deactivate", token: token).status == .ok)
        }
    }

    @Test func twoConcurrentActivationsStartItOnce() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            async let first = hub.request(.post, "\(Self.project)/activate", token: token)
            async let second = hub.request(.post, "\(Self.project)/activate", token: token)
            let statuses = [try await first.status, try await second.status].map(\.code).sorted()
            #expect(statuses == [200, 202])
            _ = try await Self.waitForState(hub, token, "active")
            let record = try await Self.record(hub)
            let helloProcesses = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
                let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                let environ = (try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)) ?? ""
                return command.contains("workload\u{0}hello") && environ.contains("PORT=\(record.exposedEndpoint?.port ?? -1)\u{0}")
            }
            #expect(helloProcesses.count == 1)
        }
    }

    @Test func aStartThatFailsSaysWhy() async throws {
        let directory = try TestHub.templateDirectory("broken", """
            name: broken
            title: Broken
            startTimeoutSeconds: 5
            components:
              - name: app
                command: ["/bin/sh", "-c", "echo missing configuration file >&2; exit 1"]
                image: unused
                port: 8080
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: { $0.templatesDirectory = directory.path }) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "broken"])
            #expect(try await hub.request(.post, "\(Self.project)/activate", token: token).status == .accepted)
            let failed = try await Self.waitForState(hub, token, "failed")
            let reason = try #require(failed["stateReason"] as? String)
            #expect(reason.contains("exited before it answered /health"))
            #expect(reason.contains("missing configuration file"))
            // A failed project may be activated again, and deleted.
            #expect(try await hub.request(.post, "\(Self.project)/activate", token: token).status == .accepted)
            _ = try await Self.waitForState(hub, token, "failed")
            #expect(try await hub.request(.delete, Self.project, token: token).status == .noContent)
        }
    }

    @Test func usersHaveALimitOfActiveEnvironments() async throws {
        try await TestHub.run(configure: { $0.maxActivePerUser = 1 }) { hub in
            let token = try await hub.adminToken()
            for name in ["web", "api"] {
                _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": name, "template": "hello"])
            }
            #expect(try await hub.request(.post, "\(Self.project)/activate", token: token).status == .accepted)
            let refused = try await hub.request(.post, "/api/users/admin/projects/api/activate", token: token)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.errorMessage?.contains("already has 1 active environments") == true)
            _ = try await Self.waitForState(hub, token, "active")
        }
    }

    @Test func deletingARunningProjectStopsItFirst() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            try await hub.startProject("web", template: "hello", token: token)
            let record = try await Self.record(hub)
            let deleted = try await hub.request(.delete, Self.project, token: token)
            #expect(deleted.status == .accepted)
            #expect(deleted.object["state"] as? String == "deleting")
            try await waitFor("the project to be gone") {
                try await hub.request(.get, Self.project, token: token).status == .notFound ? true : nil
            }
            #expect(ProcessTable.members(ofGroup: record.components[0].pid!).isEmpty)
        }
    }

    /// A start slower than the idle timeout still gets a whole timeout once it is active,
    /// although the last use (the activation) is older than that by then.
    @Test func aSlowStartIsNotStoppedTheMomentItIsDone() async throws {
        let templates = try TestHub.templateDirectory("slow", """
            name: slow
            title: Slow
            components:
              - name: web
                command: ["sh", "-c", "sleep 2; exec python3 -m http.server $PORT --bind 127.0.0.1"]
                image: unused
                port: 8080
                healthPath: /
            """)
        defer { try? FileManager.default.removeItem(at: templates) }
        try await TestHub.run(configure: {
            $0.templatesDirectory = templates.path
            $0.idleTimeout = .seconds(1)
            $0.healthCheckInterval = .milliseconds(100)
        }) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "slow"])
            _ = try await hub.request(.post, "\(Self.project)/activate", token: token)
            // Watched through the store: asking the API would count as use.
            let id = try #require(try await hub.adminProject("web")).id
            var activeSince: Date?
            let stopped = try await waitFor("the environment to be active, then stopped") { () async throws -> Project? in
                guard let project = try await hub.hub.store.project(id: id) else { return nil }
                if project.state == .active, activeSince == nil { activeSince = project.updatedAt }
                return activeSince != nil && project.state != .active ? project : nil
            }
            #expect([.stopping, .inactive].contains(stopped.state))
            #expect(stopped.updatedAt.timeIntervalSince(try #require(activeSince)) >= 1)
        }
    }

    @Test func aCrashedComponentIsRestarted() async throws {
        try await TestHub.run(configure: { $0.healthCheckInterval = .milliseconds(200) }) { hub in
            let token = try await hub.adminToken()
            try await hub.startProject("web", template: "hello", token: token)
            let first = try await Self.record(hub)
            kill(first.components[0].pid!, SIGKILL)
            try await waitFor("a new process to serve the project") { () async throws -> Bool? in
                let object = try await hub.request(.get, Self.project, token: token).object
                guard object["state"] as? String == "active", let record = try await Self.recordIfAny(hub),
                      record.components[0].pid != first.components[0].pid else { return nil }
                return true
            }
        }
    }

    @Test func aRestartedHubReadoptsWhatStillRuns() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let first = NIOLockedValueBox<EnvironmentRecord?>(nil)
            // Leave it running: the next hub takes it over without it being stopped.
            try await TestHub.run(at: location, keepEnvironments: true) { hub in
                let token = try await hub.adminToken()
                try await hub.startProject("web", template: "hello", token: token)
                let record = try await Self.record(hub)
                first.withLockedValue { $0 = record }
            }
            let record = try #require(first.withLockedValue { $0 })
            try await TestHub.run(at: location) { hub in
                try await hub.hub.waitUntilReconciled()
                let token = try await hub.adminToken()
                let project = try await hub.request(.get, Self.project, token: token).object
                #expect(project["state"] as? String == "active")
                #expect(try await Self.record(hub) == record)
                #expect(try Self.get(try #require(record.exposedEndpoint?.port), "/health") == #"{"status":"healthy"}"#)
            }
            #expect(ProcessTable.members(ofGroup: record.components[0].pid!).isEmpty)
        }
    }

    @Test func idleEnvironmentsAreStoppedAndSayWhen() async throws {
        try await TestHub.run(configure: {
            $0.idleTimeout = .seconds(1)
            $0.healthCheckInterval = .milliseconds(200)
        }) { hub in
            let token = try await hub.adminToken()
            let active = try await hub.startProject("web", template: "hello", token: token)
            let cullAt = try #require(active["cullAt"] as? String)
            #expect(active["lastActivity"] as? String != nil)
            #expect(cullAt > (active["lastActivity"] as? String ?? ""))
            let record = try await Self.record(hub)
            // Watch through the store: asking the API would count as use.
            let project = try #require(try await hub.adminProject("web"))
            try await waitFor("the idle environment to be stopped") {
                try await hub.hub.store.project(id: project.id)?.state == .inactive ? true : nil
            }
            #expect(ProcessTable.members(ofGroup: record.components[0].pid!).isEmpty)
        }
    }
}
