import EnvHubTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing
@testable import EnvHubWorkloads

@Suite struct AgentTests {
    func ask(_ client: any TestClientProtocol, _ message: String, history: [[String: String]] = []) async throws -> TestResponse {
        let body = try JSONSerialization.data(withJSONObject: ["message": message, "history": history])
        return try await client.execute(uri: "/reply", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body))
    }

    @Test func echoStreamsWordByWordThenDone() async throws {
        try await withWorkload(.agent, ["AGENT_TOKEN_DELAY_MS": "1"]) { client async throws in
            let response = try await ask(client, "echo hello big world")
            #expect(response.headers[.contentType] == "text/event-stream")
            let stream = events(in: response.text)
            #expect(stream.map(\.name) == ["token", "token", "token", "done"])
            #expect(stream.map(\.id) == ["1", "2", "3", "4"])
            #expect(stream.prefix(3).map { $0.data["text"] } == ["hello ", "big ", "world"])
            #expect(stream.last?.data == ["reply": "hello big world"])
        }
    }

    @Test func theBuiltInCommandsSayWhatTheyAre() async throws {
        try await withWorkload(.agent, ["AGENT_TOKEN_DELAY_MS": "0", "SECRET_TOKEN": "hunter2"]) { client async throws in
            func reply(_ message: String) async throws -> String {
                events(in: try await ask(client, message).text).last?.data["reply"] ?? ""
            }
            #expect(try await reply("help").contains("not a language model"))
            #expect(try await reply("whoami") == "You are user alice, talking to the agent of project web.")
            let env = try await reply("env")
            #expect(env.contains("USER_ID=alice"))
            #expect(env.contains("PROJECT_ID=web"))
            #expect(!env.contains("hunter2"))
            #expect(try await reply("time").hasPrefix("It is 20"))
            #expect(try await reply("write me a poem").contains("I only understand"))
        }
    }

    @Test func aBadBodyIsRefused() async throws {
        try await withWorkload(.agent) { client async throws in
            let response = try await client.execute(uri: "/reply", method: .post, body: ByteBuffer(string: "{\"text\": 1}"))
            #expect(response.status == .badRequest)
        }
    }

    @Test func withAModelURLItRelaysTheStreamedDeltas() async throws {
        let seen = NIOLockedValueBox<Data>(Data())
        let fake = Router()
        fake.post("/v1/chat/completions") { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            var json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            json["authorization"] = request.headers[.authorization] ?? ""
            let recorded = try JSONSerialization.data(withJSONObject: json)
            seen.withLockedValue { $0 = recorded }
            let chunks = ["Hel", "lo, ", "", "Alice"].map { piece in
                "data: {\"choices\":[{\"delta\":{\"content\":\"\(piece)\"}}]}\n\n"
            } + ["data: [DONE]\n\n"]
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                for chunk in chunks { try await writer.write(ByteBuffer(string: chunk)) }
                try await writer.finish(nil)
            })
        }
        try await Application(router: fake, configuration: .init(address: .hostname("127.0.0.1", port: 0))).testStoppingGracefully(.live) { model in
            let url = "http://127.0.0.1:\(try #require(model.port))/v1"
            try await withWorkload(.agent, ["AGENT_LLM_URL": url, "AGENT_LLM_MODEL": "tiny", "AGENT_LLM_KEY": "k-123"]) { client async throws in
                let response = try await ask(client, "greet me", history: [["role": "user", "content": "hi"], ["role": "assistant", "content": "hello"]])
                let stream = events(in: response.text)
                #expect(stream.filter { $0.name == "token" }.map { $0.data["text"] } == ["Hel", "lo, ", "Alice"])
                #expect(stream.last?.data == ["reply": "Hello, Alice"])
            }
        }
        let request = try #require(try JSONSerialization.jsonObject(with: seen.withLockedValue { $0 }) as? [String: Any])
        #expect(request["model"] as? String == "tiny")
        #expect(request["stream"] as? Bool == true)
        #expect(request["authorization"] as? String == "Bearer k-123")
        let messages = request["messages"] as? [[String: String]] ?? []
        #expect(messages.map { $0["role"] } == ["system", "user", "assistant", "user"])
        #expect(messages.last?["content"] == "greet me")
    }

    @Test func modelFailuresBecomeErrorEvents() async throws {
        let fake = Router()
        fake.post("/chat/completions") { _, _ in Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "overloaded"))) }
        try await Application(router: fake, configuration: .init(address: .hostname("127.0.0.1", port: 0))).testStoppingGracefully(.live) { model in
            let url = "http://127.0.0.1:\(try #require(model.port))/chat/completions"
            try await withWorkload(.agent, ["AGENT_LLM_URL": url]) { client async throws in
                let stream = events(in: try await ask(client, "hi").text)
                #expect(stream.map(\.name) == ["error"])
                #expect(stream.first?.data["message"]?.contains("503") == true)
                #expect(stream.first?.data["message"]?.contains("overloaded") == true)
            }
        }
    }

    @Test func anUnreachableModelBecomesAnErrorEvent() async throws {
        // Port 1 on loopback: nothing listens there.
        try await withWorkload(.agent, ["AGENT_LLM_URL": "http://127.0.0.1:1/v1"]) { client async throws in
            let stream = events(in: try await ask(client, "hi").text)
            #expect(stream.map(\.name) == ["error"])
        }
    }
}
