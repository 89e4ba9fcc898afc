import EnvHubCore
import EnvHubTestSupport
import Foundation
import Logging
import Testing
@testable import EnvHubRuntime

/// Real processes throughout: the built envhub binary's workloads and plain shell commands.
@Suite struct LocalRuntimeTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("envhub-runtime-\(UUID().uuidString)")

    func runtime(grace: Duration = .seconds(5)) -> LocalRuntime {
        LocalRuntime(root: root, envhubBinary: envhubBinary.path, stopGrace: grace, logger: quietLogger)
    }

    func spec(_ command: [String], timeout: Int = 20, env: [String: String] = [:], components: Int = 1) -> EnvironmentSpec {
        let parts = (0..<components).map { index in
            Component(name: index == 0 ? "web" : "side\(index)", command: command, image: "unused", port: 8080,
                      env: env)
        }
        return EnvironmentSpec(
            projectID: UUID().uuidString.lowercased(), owner: UserName(unchecked: "alice"), project: ProjectName(unchecked: "web"),
            template: Template(name: "t", title: "T", description: "", expose: "web", startTimeoutSeconds: timeout, components: parts),
            secret: ProjectSecret.random())
    }

    func get(_ port: Int, _ path: String) async throws -> String {
        let url = URL(string: "http://127.0.0.1:\(port)\(path)")!
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    @Test func startsAComponentThatAnswersAndStopsItWithoutLeftovers() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let runtime = runtime()
        let steps = StepLog()
        let spec = spec(["{{envhub}}", "workload", "hello"], env: ["GREETING": "hi {{user}}"], components: 2)
        let record = try await runtime.start(spec) { steps.append($0) }
        #expect(record.components.count == 2)
        let port = try #require(record.exposedEndpoint?.port)
        #expect(try await get(port, "/") == #"{"message":"Hello from Flask bot of user alice!"}"#)
        // BASE_PATH is the gateway prefix, and the workload answers under it.
        #expect(try await get(port, "/u/alice/web/health") == #"{"status":"healthy"}"#)
        #expect(steps.steps.first == .startingComponent("web"))
        #expect(steps.steps.contains(.componentReady("side1")))
        for component in record.components {
            #expect(ProcessTable.entry(pid: component.pid!)?.group == component.pid)
        }
        #expect(runtime.livingComponents(record) == ["web", "side1"])

        await runtime.stop(record)
        for component in record.components {
            #expect(ProcessTable.members(ofGroup: component.pid!).isEmpty)
        }
        #expect(runtime.livingComponents(record).isEmpty)
        // The working directory stays until the project is deleted.
        #expect(FileManager.default.fileExists(atPath: runtime.directory(of: spec.projectID).path))
        try await runtime.delete(spec.identity, record: record)
        #expect(!FileManager.default.fileExists(atPath: runtime.directory(of: spec.projectID).path))
    }

    @Test func aComponentThatDiesFailsTheStartWithItsLastWords() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = spec(["/bin/sh", "-c", "echo starting up; echo cannot open the database >&2; exit 3"])
        do {
            _ = try await runtime().start(spec)
            Issue.record("the start should have failed")
        } catch let error as RuntimeError {
            #expect(error.reason.contains("exited before it answered /health"))
            #expect(error.lastLogLines.contains("[web] cannot open the database"))
        }
    }

    /// Components' ports come from below the kernel's ephemeral range, where no other
    /// program's port 0 or outgoing connection can take them before the component binds them.
    @Test func freePortsAreBelowTheEphemeralRangeAndNotRepeated() throws {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let firstEphemeral = try #require(text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) })
        let ports = try (0..<200).map { _ in try FreePort.pick() }
        #expect(ports.allSatisfy { (10_000..<firstEphemeral).contains($0) }, "\(ports)")
        #expect(Set(ports).count == ports.count)
    }

    /// A component that answered its check and then died (a database, say) fails the start
    /// at once, not when the one after it times out.
    @Test func aComponentThatDiesWhileTheNextStartsFailsTheStart() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let template = Template(name: "t", title: "T", description: "", expose: "web", startTimeoutSeconds: 60, components: [
            // Answers its health check, then dies. (It used to die when http.server had logged
            // the check's request, which can come before the answer is sent: under load the
            // runtime then saw it die before it answered.)
            Component(name: "db", command: ["python3", "-c", """
                import http.server, os, sys
                class Answer(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        self.send_response(200)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Answer).handle_request()
                sys.exit("db gave up")
                """], image: "unused", port: 5432, health: .http(path: "/")),
            Component(name: "web", command: ["/bin/sh", "-c", "sleep 600"], image: "unused", port: 8080, health: .tcp),
        ])
        let spec = EnvironmentSpec(projectID: UUID().uuidString.lowercased(), owner: UserName(unchecked: "alice"),
                                   project: ProjectName(unchecked: "web"), template: template, secret: ProjectSecret.random())
        let started = ContinuousClock.now
        do {
            _ = try await runtime().start(spec)
            Issue.record("the start should have failed")
        } catch let error as RuntimeError {
            #expect(error.reason == "db exited while web was starting")
            #expect(error.lastLogLines.contains("[db] db gave up"))
        }
        #expect(ContinuousClock.now - started < .seconds(30), "failed at once, not at the start timeout")
    }

    @Test func aComponentThatNeverGetsHealthyIsStoppedAfterTheTimeout() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let marker = "envhub-test-\(UUID().uuidString.prefix(8))"
        let spec = spec(["/bin/sh", "-c", "sleep 600; : \(marker)"], timeout: 1)
        let started = ContinuousClock.now
        do {
            _ = try await runtime().start(spec)
            Issue.record("the start should have failed")
        } catch let error as RuntimeError {
            #expect(error.reason == "web did not answer /health with 2xx within 1 s")
        }
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(try processesNamed(marker).isEmpty)
    }

    @Test func componentsThatIgnoreSIGTERMAreKilledAfterTheGracePeriod() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        // The shell and its sleep ignore SIGTERM; the hello beside them answers health.
        let script = "trap '' TERM; {{envhub}} workload hello & sleep 600"
        let runtime = runtime(grace: .milliseconds(300))
        let record = try await runtime.start(spec(["/bin/sh", "-c", script]))
        let started = ContinuousClock.now
        await runtime.stop(record)
        #expect(ContinuousClock.now - started >= .milliseconds(250))
        #expect(ProcessTable.members(ofGroup: record.components[0].pid!).isEmpty)
    }

    @Test func aNewRuntimeRecognisesRecordedProcessesAndNotImpostors() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let record = try await runtime().start(spec(["{{envhub}}", "workload", "hello"]))
        // What a restarted hub does: a fresh runtime, the record from the store.
        let restarted = runtime()
        #expect(restarted.livingComponents(record) == ["web"])
        var impostor = record
        impostor.components[0].startTime! += 1
        #expect(restarted.livingComponents(impostor).isEmpty)
        #expect(try await get(try #require(record.exposedEndpoint?.port), "/health") == #"{"status":"healthy"}"#)
        await restarted.stop(record)
        #expect(restarted.livingComponents(record).isEmpty)
    }

    @Test func theHubsSecretsAreNotPassedOn() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        // Not set with setenv: other tests start processes meanwhile, and changing the
        // environment while Foundation's Process copies it crashes.
        let hub = ProcessInfo.processInfo.environment.merging(["ENVHUB_DATABASE_URL": "postgres://secret@db/x"]) { $1 }
        let spec = spec(["/bin/sh", "-c", "env; exec {{envhub}} workload hello"])
        let runtime = LocalRuntime(root: root, envhubBinary: envhubBinary.path, hubEnvironment: hub, logger: quietLogger)
        let record = try await runtime.start(spec)
        await runtime.stop(record)
        let output = runtime.lastLines(spec.projectID, 200).joined(separator: "\n")
        #expect(output.contains("[web] USER_ID=alice"))
        #expect(output.contains("[web] BASE_PATH=/u/alice/web"))
        #expect(!output.contains("ENVHUB_DATABASE_URL"))
    }

    private func processesNamed(_ marker: String) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return command.contains(marker) && ProcessTable.entry(pid: pid)?.isAlive == true
        }
    }
}

final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [StartStep] = []
    func append(_ step: StartStep) { lock.withLock { recorded.append(step) } }
    var steps: [StartStep] { lock.withLock { recorded } }
}
