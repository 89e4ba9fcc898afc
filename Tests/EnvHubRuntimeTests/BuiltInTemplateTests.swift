import AsyncHTTPClient
import EnvHubCore
import EnvHubTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import EnvHubRuntime

/// The `data` and `desktop` templates as shipped, run by the local runtime with the real
/// programs: Debian's PostgreSQL, Xvfb, openbox, xterm, x11vnc, websockify and noVNC.
@Suite(.serialized) struct BuiltInTemplateTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("envhub-builtin-\(UUID().uuidString)")

    func runtime() -> LocalRuntime {
        LocalRuntime(root: root, envhubBinary: envhubBinary.path, stopGrace: .seconds(10), logger: quietLogger)
    }

    func spec(_ template: Template) -> EnvironmentSpec {
        EnvironmentSpec(projectID: UUID().uuidString.lowercased(), owner: UserName(unchecked: "alice"),
                        project: ProjectName(unchecked: "shop"), template: template, secret: ProjectSecret.random())
    }

    @Test func dataStoresDocumentsInItsOwnPostgresAndKeepsThemAcrossRestarts() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let runtime = runtime()
        let spec = spec(try builtInTemplate("data"))
        let first = try await runtime.start(spec)
        let app = try #require(first.exposedEndpoint?.port)

        let stored = try await request(app, "/data", method: .POST, body: #"{"name": "Ada", "langs": ["en", "fr"]}"#)
        #expect(stored.status == 201)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(stored.body.utf8)) as? [String: Any])
        #expect(document["name"] as? String == "Ada")
        let id = try #require(document["_id"] as? String)
        for bad in ["[1, 2]", #""text""#, "{broken", "", #"{"nul": "a\u0000b"}"#] {
            let refused = try await request(app, "/data", method: .POST, body: bad)
            #expect(refused.status == 400, "\(bad) → \(refused.status) \(refused.body)")
            #expect(refused.body.contains(#""error""#))
        }
        #expect(try await request(app, "/data?limit=0").status == 400)

        // The database is a real PostgreSQL of the project's, in its volume directory.
        let pgdata = runtime.directory(of: spec.projectID).appendingPathComponent("volumes/db/pgdata/PG_VERSION")
        #expect(FileManager.default.fileExists(atPath: pgdata.path))
        await runtime.stop(first)
        for component in first.components { #expect(ProcessTable.members(ofGroup: component.pid!).isEmpty) }

        // Deactivate and activate again: the same cluster, the same documents.
        let second = try await runtime.start(spec)
        let listed = try await request(try #require(second.exposedEndpoint?.port), "/data")
        let documents = try #require(try JSONSerialization.jsonObject(with: Data(listed.body.utf8)) as? [[String: Any]])
        #expect(documents.map { $0["_id"] as? String } == [id])
        #expect(documents.first?["langs"] as? [String] == ["en", "fr"])
        try await runtime.delete(spec.identity, record: second)
        for component in second.components { #expect(ProcessTable.members(ofGroup: component.pid!).isEmpty) }
        #expect(!FileManager.default.fileExists(atPath: runtime.directory(of: spec.projectID).path))
    }

    @Test func desktopServesNoVNCAndRelaysVNCAndRestartsWhatDies() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let runtime = runtime()
        let record = try await runtime.start(spec(try builtInTemplate("desktop")))
        let port = try #require(record.exposedEndpoint?.port)
        let group = try #require(record.components[0].pid)

        let page = try await request(port, "/vnc.html")
        #expect(page.status == 200)
        #expect(page.body.contains("noVNC"))
        // The WebSocket noVNC opens reaches x11vnc, which greets in RFB.
        let greeting = try await rawWebSocketOpening(port: port, path: "/websockify", protocol: "binary")
        #expect(greeting.contains("RFB 003.008"), "\(greeting)")

        // Every program runs in the component's group; x11vnc listens on loopback only.
        let programs = Set(ProcessTable.members(ofGroup: group).compactMap { Self.command($0.pid) })
        #expect(programs.isSuperset(of: ["Xvfb", "openbox", "xterm", "x11vnc"]), "\(programs)")
        #expect(!Self.listensOnAllInterfaces(pids: ProcessTable.members(ofGroup: group).map(\.pid)))

        // Closing the terminal (it exits) brings a new one.
        let xterm = try #require(ProcessTable.members(ofGroup: group).first { Self.command($0.pid) == "xterm" }?.pid)
        kill(xterm, SIGKILL)
        let replacement = try await waitFor("a new xterm") {
            ProcessTable.members(ofGroup: group).first { Self.command($0.pid) == "xterm" && $0.pid != xterm }?.pid
        }
        #expect(replacement != xterm)

        await runtime.stop(record)
        #expect(ProcessTable.members(ofGroup: group).isEmpty)
    }

    @Test func desktopWithoutItsProgramsFailsNamingThePackages() async throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let empty = root.appendingPathComponent("empty-bin")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        var template = try builtInTemplate("desktop")
        template.components[0].env["PATH"] = empty.path
        do {
            _ = try await runtime().start(spec(template))
            Issue.record("the start should have failed")
        } catch let error as RuntimeError {
            #expect(error.reason.contains("vnc exited before it answered /vnc.html"))
            #expect(error.description.contains("apt-get install xvfb openbox xterm x11vnc websockify"), "\(error)")
        }
    }

    // MARK: - Helpers

    struct Answer {
        var status: UInt
        var body: String
    }

    func request(_ port: Int, _ path: String, method: HTTPMethod = .GET, body: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return Answer(status: response.status.code, body: String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    static func command(_ pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether any of the processes has a listening TCP socket on 0.0.0.0 or [::].
    static func listensOnAllInterfaces(pids: [Int32]) -> Bool {
        let inodes = Set(pids.flatMap { pid in
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"))
                    .flatMap { $0.hasPrefix("socket:[") ? String($0.dropFirst(8).dropLast()) : nil }
            }
        })
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let lines = ((try? String(contentsOfFile: table, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst()
            for line in lines {
                let fields = line.split(separator: " ")
                // local_address, state 0A = LISTEN, inode
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                let address = fields[1].split(separator: ":")[0]
                if address.allSatisfy({ $0 == "0" }) { return true }
            }
        }
        return false
    }
}
