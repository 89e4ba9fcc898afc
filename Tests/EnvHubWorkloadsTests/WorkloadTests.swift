import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import EnvHubWorkloads

let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

func withWorkload(
    _ workload: Workload, _ variables: [String: String] = [:],
    _ body: @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    let environment = try WorkloadEnvironment(["PORT": "0", "USER_ID": "alice", "PROJECT_ID": "web"].merging(variables) { $1 })
    try await workload.application(environment, logger: quiet).test(.router) { client in try await body(client) }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var object: [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: String] ?? [:]
    }
}

@Suite struct HelloAndAthleteTests {
    @Test func helloGreetsItsUserAndIsHealthy() async throws {
        try await withWorkload(.hello) { client async throws in
            let hello = try await client.execute(uri: "/", method: .get)
            #expect(hello.object == ["message": "Hello from Flask bot of user alice!"])
            #expect(hello.headers[.contentType] == "application/json")
            #expect(try await client.execute(uri: "/health", method: .get).object == ["status": "healthy"])
        }
    }

    @Test func workloadsAnswerUnderTheirBasePathToo() async throws {
        try await withWorkload(.hello, ["BASE_PATH": "/u/alice/web/"]) { client async throws in
            #expect(try await client.execute(uri: "/u/alice/web/", method: .get).object["message"] != nil)
            #expect(try await client.execute(uri: "/u/alice/web", method: .get).object["message"] != nil)
            #expect(try await client.execute(uri: "/u/alice/web/health?probe=1", method: .get).object == ["status": "healthy"])
            #expect(try await client.execute(uri: "/u/alice/webx/health", method: .get).status == .notFound)
        }
    }

    @Test func athleteAnswersGetAndRefusesEverythingElse() async throws {
        try await withWorkload(.athlete) { client async throws in
            #expect(try await client.execute(uri: "/", method: .get).object == ["favorite_athlete": "Serena Williams"])
            for method: HTTPRequest.Method in [.post, .put, .patch, .delete] {
                let refused = try await client.execute(uri: "/", method: method, body: ByteBuffer(string: "{}"))
                #expect(refused.status == .methodNotAllowed)
                #expect(refused.text == "Only GET method valid")
                #expect(refused.headers[.contentType]?.hasPrefix("text/plain") == true)
            }
        }
        try await withWorkload(.athlete, ["FAVORITE_ATHLETE": "Eliud Kipchoge"]) { client async throws in
            #expect(try await client.execute(uri: "/", method: .get).object == ["favorite_athlete": "Eliud Kipchoge"])
        }
    }

    @Test func aBadPortIsRefusedWithAReason() {
        #expect(throws: WorkloadError.self) { try WorkloadEnvironment(["PORT": "eighty"]) }
    }
}

/// One parsed server-sent event.
struct Event: Equatable {
    let id: String
    let name: String
    let data: [String: String]
}

func events(in text: String) -> [Event] {
    text.components(separatedBy: "\n\n").compactMap { block in
        var fields: [String: String] = [:]
        for line in block.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard let name = fields["event"], let id = fields["id"], let data = fields["data"],
              let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: String] else { return nil }
        return Event(id: id, name: name, data: object)
    }
}

@Suite struct SupervisedWorkloadTests {
    @Test func postgresWithoutItsServerProgramsNamesThePackage() throws {
        do {
            _ = try PostgresWorkload.serverBinaries(["PATH": "/nonexistent"], debianRoot: "/nonexistent")
            Issue.record("expected no server programs to be found")
        } catch {
            #expect("\(error)".contains("apt-get install postgresql"))
        }
    }

    @Test func missingProgramsAreAllNamedWithTheirPackages() throws {
        do {
            _ = try RequiredPrograms.locate([("sh", "dash"), ("Xvfb-nope", "xvfb"), ("x11vnc-nope", "x11vnc")], path: "/usr/bin:/bin")
            Issue.record("expected missing programs")
        } catch {
            #expect("\(error)" == "missing programs: Xvfb-nope (package xvfb), x11vnc-nope (package x11vnc); install them with: apt-get install xvfb x11vnc")
        }
        #expect(try RequiredPrograms.locate([("sh", "dash")], path: "/nonexistent:/bin")["sh"] == "/bin/sh")
    }

    @Test func supervisorsAreNotHTTPServers() {
        #expect(throws: WorkloadError.self) { try Workload.desktop.application(try WorkloadEnvironment([:]), logger: quiet) }
    }
}
