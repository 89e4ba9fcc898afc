import AsyncHTTPClient
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Progress events and logs, read as streams over a real socket.
@Suite struct EnvironmentStreamTests {
    static let project = "/api/users/admin/projects/web"

    /// Reads a streaming answer until `done` says the text so far is enough; `opened` hears of the first bytes.
    static func stream(
        _ url: String, token: String, opened: @escaping @Sendable () -> Void = {}, until done: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        try await withTimeout("reading \(url)") {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            #expect(response.status.code == 200)
            var text = ""
            for try await chunk in response.body {
                if text.isEmpty { opened() }
                text += String(buffer: chunk)
                if done(text) { return text }
            }
            return text
        }
    }

    @Test func eventsTellTheStateThenEachStep() async throws {
        try await TestHub.run(live: true) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            let port = try #require(hub.client.port)
            let (opened, signal) = AsyncStream.makeStream(of: Void.self)
            async let events = Self.stream(
                "http://127.0.0.1:\(port)\(Self.project)/events", token: token, opened: { signal.yield() }
            ) { text in text.contains("\"state\":\"active\"") }
            // The first event (the current state) shows the subscription is in place.
            var iterator = opened.makeAsyncIterator()
            _ = await iterator.next()
            #expect(try await hub.request(.post, "\(Self.project)/activate", token: token).status == .accepted)
            let text = try await events
            let kinds = text.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }
            #expect(kinds.first == "event: state")
            #expect(text.contains("\"state\":\"inactive\""))
            #expect(text.contains("\"state\":\"starting\""))
            #expect(text.contains("\"message\":\"starting web\""))
            #expect(text.contains("\"message\":\"waiting for web to answer /health\""))
            #expect(text.contains("\"message\":\"web is ready\""))
            let ids = text.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
        }
    }

    @Test func logsShowTheTailAndFollowNewLines() async throws {
        let directory = try TestHub.templateDirectory("ticker", """
            name: ticker
            title: Ticker
            components:
              - name: web
                command: ["/bin/sh", "-c", "(n=0; while true; do n=$((n+1)); echo tick $n; sleep 0.1; done) & exec {{envhub}} workload hello"]
                image: unused
                port: 8080
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(configure: { $0.templatesDirectory = directory.path }, live: true) { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "ticker"])
            _ = try await hub.request(.post, "\(Self.project)/activate", token: token)
            try await waitFor("a few ticks") { () async throws -> Bool? in
                let text = try await hub.request(.get, "\(Self.project)/logs?tail=3", token: token).text
                return text.split(separator: "\n").count == 3 && text.contains("[web] tick") ? true : nil
            }
            let bad = try await hub.request(.get, "\(Self.project)/logs?tail=lots", token: token)
            #expect(bad.status == .badRequest)
            let port = try #require(hub.client.port)
            let followed = try await Self.stream("http://127.0.0.1:\(port)\(Self.project)/logs?tail=1&follow=true", token: token) { text in
                text.split(separator: "\n").count >= 4
            }
            let numbers = followed.split(separator: "\n").compactMap { line in
                line.hasPrefix("[web] tick ") ? Int(line.dropFirst("[web] tick ".count)) : nil
            }
            #expect(numbers.count >= 3)
            #expect(numbers == numbers.sorted())
        }
    }

    /// With one start slot, the second and third activations wait and are told their place.
    @Test func startsBeyondTheLimitQueueInOrderAndHearTheirPosition() async throws {
        let gate = FileManager.default.temporaryDirectory.appendingPathComponent("envhub-gate-\(UUID().uuidString)")
        // Each start waits (unhealthy) until the test opens the gate, so the slot stays taken.
        let directory = try TestHub.templateDirectory("gated", """
            name: gated
            title: Gated
            components:
              - name: web
                command: ["/bin/sh", "-c", "while [ ! -e '\(gate.path)' ]; do sleep 0.05; done; exec \\"$0\\" workload hello", "{{envhub}}"]
                image: unused
                port: 8080
            """)
        defer {
            try? FileManager.default.removeItem(at: directory)
            try? FileManager.default.removeItem(at: gate)
        }
        try await TestHub.run(configure: { $0.templatesDirectory = directory.path; $0.maxConcurrentStarts = 1 }, live: true) { hub in
            let token = try await hub.adminToken()
            let port = try #require(hub.client.port)
            let projects = "/api/users/admin/projects"
            for name in ["first", "second", "third"] {
                _ = try await hub.request(.post, projects, token: token, json: ["name": name, "template": "gated"])
            }
            func events(_ name: String, until done: @escaping @Sendable (String) -> Bool) async throws -> (Task<String, any Error>, Void) {
                let (opened, signal) = AsyncStream.makeStream(of: Void.self)
                let task = Task {
                    try await Self.stream("http://127.0.0.1:\(port)\(projects)/\(name)/events", token: token, opened: { signal.yield() }, until: done)
                }
                var iterator = opened.makeAsyncIterator()
                return (task, await iterator.next()!)
            }
            #expect(try await hub.request(.post, "\(projects)/first/activate", token: token).status == .accepted)
            let (second, _) = try await events("second") { $0.contains("number 1 in line") }
            #expect(try await hub.request(.post, "\(projects)/second/activate", token: token).status == .accepted)
            let secondText = try await second.value
            #expect(secondText.contains(#""position":1"#))

            let seen = NIOLockedValueBox("")
            let (third, _) = try await events("third") { text in
                seen.withLockedValue { $0 = text }
                return text.contains(#""state":"active""#)
            }
            #expect(try await hub.request(.post, "\(projects)/third/activate", token: token).status == .accepted)
            try await waitFor("the third start to queue behind the second") {
                seen.withLockedValue { $0.contains("in line") } ? true : nil
            }
            #expect(FileManager.default.createFile(atPath: gate.path, contents: Data()), "the gate opens")
            let thirdText = try await third.value
            #expect(thirdText.contains("queued for a start slot, number 2 in line"))
            #expect(thirdText.contains(#""position":2"#))
            for name in ["first", "second", "third"] {
                _ = try await LifecycleTests.waitForState(hub, token, "active", path: "\(projects)/\(name)")
            }
        }
    }
}
