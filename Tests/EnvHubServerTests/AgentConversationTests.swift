import AsyncHTTPClient
import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import EnvHubServer

/// Talking to a project's agent through the hub (docs/agent.md), with real environments: the
/// built-in `agent` workload, and a Python agent that fails on request (Tests/Support/agent-test-app.py).
@Suite struct AgentConversationTests {
    static let messages = "/api/users/admin/projects/bot/messages"

    /// A live hub on `database` with the Python agent as template `probe` (its hang-ups noted in
    /// `markers`), admin signed in, project `bot` of `template` active.
    static func withAgent(
        _ template: String = "agent", on database: TestDatabase = .sqlite, markers: URL? = nil,
        _ body: @escaping @Sendable (TestHub, String, Int) async throws -> Void
    ) async throws {
        let directory = try TestHub.templateDirectory("probe", """
            name: probe
            title: Probe agent
            messagePath: /reply
            components:
              - name: api
                command: ["python3", "\(agentTestApp.path)"]
                image: unused
                port: 8080
                env:
                  MARKER_DIR: "\(markers?.path ?? "")"
            """)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestHub.run(on: database, configure: { $0.templatesDirectory = directory.path }, live: true) { hub in
            let token = try await hub.adminToken()
            try await hub.startProject("bot", template: template, token: token)
            try await withTimeout("the conversation test", .seconds(90)) {
                try await body(hub, token, try #require(hub.client.port))
            }
        }
    }

    /// `echo w1 w2 … wN`: the built-in agent answers with N tokens, 40 ms apart.
    static func echo(_ words: Int) -> (message: String, reply: String) {
        let reply = (1...words).map { "w\($0)" }.joined(separator: " ")
        return ("echo " + reply, reply)
    }

    static func stats(_ hub: TestHub, _ token: String) async throws -> Int? {
        try await hub.request(.get, "/api/stats", token: token).object["activeAgentStreams"] as? Int
    }

    static func conversation(_ hub: TestHub, _ token: String, query: String = "") async throws -> [[String: Any]] {
        try await hub.request(.get, messages + query, token: token).object["messages"] as? [[String: Any]] ?? []
    }

    @Test(arguments: TestDatabase.allCases)
    func theReplyStreamsTokenByTokenAndTheConversationIsKept(_ database: TestDatabase) async throws {
        try await Self.withAgent(on: database) { hub, token, port in
            let (message, reply) = Self.echo(20)
            var events = try await EventReader.open(port: port, path: Self.messages, token: token, message: "  \(message)\n")
            #expect(events.status == 200)
            #expect(events.contentType == "text/event-stream")
            let all = try await events.rest()
            #expect(all.map(\.type) == ["start"] + Array(repeating: "token", count: 20) + ["done"])
            #expect(all.map(\.id) == (1...22).map { "1:\($0)" })
            // The tokens came as the agent made them, not in one block at the end.
            #expect(events.readsBeforeLast >= 10, "the tokens came in \(events.readsBeforeLast) reads")
            let start = try #require(all.first?.object["stored"] as? [String: Any])
            #expect(start["id"] as? Int == 1)
            #expect(start["role"] as? String == "user")
            #expect(start["content"] as? String == message)
            #expect(start["author"] as? String == "admin")
            #expect(all.dropFirst().dropLast().compactMap { $0.object["text"] as? String }.joined() == reply)
            let done = try #require(all.last?.object)
            #expect(done["reply"] as? String == reply)
            let stored = try #require(done["stored"] as? [String: Any])
            #expect(stored["id"] as? Int == 2)
            #expect(stored["status"] as? String == "complete")
            #expect(stored["replyTo"] as? Int == 1)

            let history = try await Self.conversation(hub, token)
            #expect(history.map { $0["role"] as? String } == ["user", "assistant"])
            #expect(history.map { $0["content"] as? String } == [message, reply])
            #expect(history.first?["status"] == nil)
            #expect(try await Self.stats(hub, token) == 0)

            // A second exchange, then the history a page at a time.
            var second = try await EventReader.open(port: port, path: Self.messages, token: token, message: "echo again")
            #expect(try await second.rest().first?.id == "3:1")
            let newest = try await hub.request(.get, Self.messages + "?limit=2", token: token).object
            #expect((newest["messages"] as? [[String: Any]])?.map { $0["id"] as? Int } == [3, 4])
            #expect(newest["hasMore"] as? Bool == true)
            let older = try await hub.request(.get, Self.messages + "?before=3&limit=2", token: token).object
            #expect((older["messages"] as? [[String: Any]])?.map { $0["id"] as? Int } == [1, 2])
            #expect(older["hasMore"] as? Bool == false)
        }
    }

    @Test func aClientThatReconnectsGetsExactlyTheEventsItMissed() async throws {
        try await Self.withAgent { hub, token, port in
            // About 6 s of reply (40 ms a token): the followers below must join while it lasts,
            // also on a loaded machine.
            let (message, reply) = Self.echo(150)
            var asker = try await EventReader.open(port: port, path: Self.messages, token: token, message: message)
            var seen: [EventReader.Event] = []
            while seen.last?.id != "1:6", let event = try await asker.next() { seen.append(event) }
            #expect(seen.count == 6)

            let busy = try await hub.request(.post, Self.messages, token: token, json: ["message": "echo too soon"])
            #expect(busy.status == .conflict)
            #expect(busy.errorCode == "reply_in_progress")

            var resumed = try await EventReader.open(port: port, path: Self.messages + "/stream", token: token, lastEventID: "1:6")
            var replayed = try await EventReader.open(port: port, path: Self.messages + "/stream", token: token, lastEventID: "7:3")
            let resumedEvents = try await resumed.rest()
            let rest = try await asker.rest()
            #expect(resumedEvents.map(\.id) == rest.map(\.id))
            #expect(resumedEvents.map(\.data) == rest.map(\.data))
            #expect(resumedEvents.first?.id == "1:7")
            #expect(resumedEvents.last?.type == "done")
            #expect(resumedEvents.last?.object["reply"] as? String == reply)
            // An id of no event of this reply: the whole reply.
            #expect(try await replayed.rest().map(\.id) == (seen + rest).map(\.id))

            var after = try await EventReader.open(port: port, path: Self.messages + "/stream", token: token, lastEventID: rest.last?.id ?? "")
            #expect(after.status == 204)
            #expect(try await after.rest().isEmpty)
        }
    }

    @Test func aClientThatLeavesCancelsTheReply() async throws {
        try await Self.withAgent { hub, token, port in
            // 300 words take the agent 12 s; the hub gives up on them long before.
            let (message, reply) = Self.echo(300)
            let asker = try RawSocket(port: port)
            asker.send(Self.rawPost(message, token: token))
            _ = try await asker.receive { $0.components(separatedBy: "event: token").count > 3 }
            #expect(try await Self.stats(hub, token) == 1)
            asker.close()
            _ = try await waitFor("the reply to be cancelled", timeout: .seconds(8)) { try await Self.stats(hub, token) == 0 ? true : nil }
            let last = try #require(try await Self.conversation(hub, token).last)
            #expect(last["role"] as? String == "assistant")
            #expect(last["status"] as? String == "cancelled")
            let partial = try #require(last["content"] as? String)
            #expect(!partial.isEmpty && partial.count < reply.count && reply.hasPrefix(partial))

            var next = try await EventReader.open(port: port, path: Self.messages, token: token, message: "echo still here")
            #expect(try await next.rest().last?.object["reply"] as? String == "still here")
        }
    }

    @Test func theAgentHearsTheHubHangUp() async throws {
        let markers = FileManager.default.temporaryDirectory.appendingPathComponent("agent-markers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: markers, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: markers) }
        try await Self.withAgent("probe", markers: markers) { hub, token, port in
            let asker = try RawSocket(port: port)
            // 400 tokens take the agent 20 s.
            asker.send(Self.rawPost("slow 400", token: token))
            _ = try await asker.receive { $0.components(separatedBy: "event: token").count > 3 }
            asker.close()
            let hungUp = markers.appendingPathComponent("hung-up").path
            // Well within the 20 s the reply would take, with room for a loaded CI machine.
            _ = try await waitFor("the agent to see the hub hang up", timeout: .seconds(15)) {
                FileManager.default.fileExists(atPath: hungUp) ? true : nil
            }
            _ = try await waitFor("the reply to be stored", timeout: .seconds(8)) { try await Self.stats(hub, token) == 0 ? true : nil }
            #expect(try await Self.conversation(hub, token).last?["status"] as? String == "cancelled")
        }
    }

    @Test func aSecondFollowerKeepsTheReplyAliveWhenTheFirstLeaves() async throws {
        try await Self.withAgent { hub, token, port in
            let (message, reply) = Self.echo(50)
            let asker = try RawSocket(port: port)
            asker.send(Self.rawPost(message, token: token))
            _ = try await asker.receive { $0.contains("event: token") }
            var follower = try await EventReader.open(port: port, path: Self.messages + "/stream", token: token)
            #expect(try await follower.next()?.type == "start")
            asker.close()
            let rest = try await follower.rest()
            #expect(rest.last?.type == "done")
            #expect((rest.last?.object["stored"] as? [String: Any])?["status"] as? String == "complete")
            let last = try #require(try await Self.conversation(hub, token).last)
            #expect(last["status"] as? String == "complete")
            #expect(last["content"] as? String == reply)
        }
    }

    @Test func agentFailuresBecomeErrorEventsAndTheConversationSaysSo() async throws {
        try await Self.withAgent("probe") { hub, token, port in
            func ask(_ message: String) async throws -> [EventReader.Event] {
                var events = try await EventReader.open(port: port, path: Self.messages, token: token, message: message)
                #expect(events.status == 200)
                return try await events.rest()
            }
            let failed = try await ask("fail")
            #expect(failed.map(\.type) == ["start", "error"])
            #expect(failed.last?.object["code"] as? String == "agent_failed")
            #expect((failed.last?.object["message"] as? String)?.contains("500: the agent broke") == true)
            #expect(try await ask("json").last?.object["code"] as? String == "agent_failed")

            let reported = try await ask("error")
            #expect(reported.map(\.type) == ["start", "token", "error"])
            #expect(reported.last?.object["code"] as? String == "agent_error")
            #expect(reported.last?.object["message"] as? String == "the model is overloaded")
            let stored = try #require(reported.last?.object["stored"] as? [String: Any])
            #expect(stored["status"] as? String == "failed")
            #expect(stored["content"] as? String == "partial ")
            #expect(stored["error"] as? String == "the model is overloaded")

            #expect(try await ask("break").last?.object["code"] as? String == "agent_disconnected")
            let big = try await ask("big")
            #expect(big.map(\.type) == ["start", "error"])
            #expect(big.last?.object["code"] as? String == "reply_too_long")

            // The agent is sent the conversation so far, without the replies that failed.
            let history = try await ask("history").last?.object["reply"] as? String ?? ""
            let turns = try #require(try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: String]])
            #expect(turns.map { $0["content"] ?? "" } == ["fail", "json", "error", "break", "big"])
            #expect(turns.allSatisfy { $0["role"] == "user" })

            let died = try await ask("die")
            #expect(died.last?.object["code"] as? String == "agent_disconnected")
            let entries = try await Self.conversation(hub, token, query: "?limit=100")
            #expect(entries.filter { $0["role"] as? String == "assistant" }.map { $0["status"] as? String }
                == ["failed", "failed", "failed", "failed", "failed", "complete", "failed"])
        }
    }

    @Test func projectsThatCannotTalkAnswerWithTheReason() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "bot", "template": "agent"])
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            let inactive = try await hub.request(.post, Self.messages, token: token, json: ["message": "hello"])
            #expect(inactive.status == .conflict)
            #expect(inactive.errorCode == "environment_not_running")
            #expect(inactive.object["state"] as? String == "inactive")
            let noAgent = try await hub.request(.post, "/api/users/admin/projects/web/messages", token: token, json: ["message": "hello"])
            #expect(noAgent.status == .conflict)
            #expect(noAgent.errorCode == "no_agent")
            #expect(noAgent.errorMessage?.contains("messagePath") == true)
            // Nothing was stored, and nothing is in flight.
            #expect(try await Self.conversation(hub, token).isEmpty)
            #expect(try await hub.request(.get, Self.messages + "/stream", token: token).status == .noContent)
        }
    }

    @Test func badInputAndOtherUsersAreRefused() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let bob = try await hub.createUser("bob", adminToken: token)
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "bot", "template": "agent"])
            /// "status code" of the answer to a POST of `json` or `raw`.
            func refusal(_ json: Any? = nil, raw: String? = nil) async throws -> String {
                let response = try await hub.request(.post, Self.messages, token: token, json: json, rawBody: raw)
                return "\(response.status.code) \(response.errorCode ?? "-")"
            }
            #expect(try await refusal([String: String]()) == "400 invalid_field")
            #expect(try await refusal(["message": " \n "]) == "400 invalid_field")
            #expect(try await refusal(["message": 7]) == "400 invalid_field")
            #expect(try await refusal(["message": String(repeating: "x", count: AgentMessage.maxCharacters + 1)]) == "400 invalid_field")
            #expect(try await refusal(raw: "{\"message\": ") == "400 bad_request")
            #expect(try await refusal(raw: "[\"hello\"]") == "400 bad_request")
            #expect(try await refusal(raw: "") == "400 bad_request")
            #expect(try await refusal(raw: "{\"message\": \"\(String(repeating: "x", count: 1 << 20))\"}") == "413 body_too_large")
            for query in ["?limit=0", "?limit=101", "?limit=x", "?before=0", "?before=x"] {
                #expect(try await hub.request(.get, Self.messages + query, token: token).errorCode == "invalid_field", "\(query)")
            }
            for (method, path) in [(HTTPRequest.Method.post, Self.messages), (.get, Self.messages), (.get, Self.messages + "/stream")] {
                let response = try await hub.request(method, path, token: bob, json: method == .post ? ["message": "hi"] : nil)
                #expect(response.status == .notFound, "\(method) \(path) as another user")
                #expect(try await hub.request(method, path).status == .unauthorized)
            }
        }
    }

    @Test func theEventParserFollowsTheRules() throws {
        var parser = ServerSentEventParser(maxLineBytes: 64)
        var events: [ServerSentEventParser.Event] = []
        for chunk in [": comment\r", "\nevent: token\r\ndata: {\"te", "xt\":1}\r", "\r", "\ndata:a\ndata: b\nid: 9\n\nevent: x\n\n", "data\n\n"] {
            events += try parser.feed(ByteBuffer(string: chunk))
        }
        #expect(events == [
            .init(type: "token", data: "{\"text\":1}", id: nil),
            .init(type: "message", data: "a\nb", id: "9"),
            .init(type: "message", data: "", id: "9"),
        ])
        #expect(throws: ServerSentEventParser.LineTooLong.self) { try parser.feed(ByteBuffer(string: String(repeating: "d", count: 65))) }
    }

    static func rawPost(_ message: String, token: String) -> String {
        let body = String(decoding: try! JSONSerialization.data(withJSONObject: ["message": message]), as: UTF8.self)
        return "POST \(messages) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
}

/// A client reading server-sent events as they arrive, over a real connection.
struct EventReader {
    struct Event: Sendable {
        let type: String
        let id: String?
        let data: String
        var object: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:] }
    }

    let status: Int
    let contentType: String?
    private var chunks: HTTPClientResponse.Body.AsyncIterator
    private var parser = ServerSentEventParser()
    private var pending: [Event] = []
    private var reads = 0
    /// Reads of the body that brought events, before the one that brought the last event.
    private(set) var readsBeforeLast = 0

    /// POSTs `message` when given, else GETs, with `Last-Event-ID` when given.
    static func open(port: Int, path: String, token: String, message: String? = nil, lastEventID: String? = nil) async throws -> EventReader {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        if let message {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["message": message])))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return EventReader(
            status: Int(response.status.code), contentType: response.headers.first(name: "Content-Type"),
            chunks: response.body.makeAsyncIterator())
    }

    private init(status: Int, contentType: String?, chunks: HTTPClientResponse.Body.AsyncIterator) {
        self.status = status
        self.contentType = contentType
        self.chunks = chunks
    }

    /// The next event, or nil when the stream has ended.
    mutating func next() async throws -> Event? {
        while pending.isEmpty {
            guard let chunk = try await chunks.next() else { return nil }
            let events = try parser.feed(chunk).map { Event(type: $0.type, id: $0.id, data: $0.data) }
            if !events.isEmpty {
                readsBeforeLast = reads
                reads += 1
            }
            pending += events
        }
        return pending.removeFirst()
    }

    /// Every event until the stream ends.
    mutating func rest() async throws -> [Event] {
        var events: [Event] = []
        while let event = try await next() { events.append(event) }
        return events
    }
}
