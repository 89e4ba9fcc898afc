import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore

/// The agent: `POST /reply` with `{"message": …, "history": [{"role", "content"}]}` answers
/// `text/event-stream`: `token` events (`{"text": …}`) as the reply grows, then `done`
/// (`{"reply": …}`), or `error` (`{"message": …}`). With `AGENT_LLM_URL` it relays to an
/// OpenAI-compatible streaming chat-completions endpoint; without, `BuiltInAssistant`
/// answers a few commands. It never pretends to be a language model.
struct AgentWorkload {
    let environment: WorkloadEnvironment

    struct ReplyRequest: Decodable {
        let message: String
        let history: [ChatTurn]?
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        let source = Self.replySource(environment)
        router.post("/reply") { request, context in
            let body: ReplyRequest
            do {
                body = try await request.decode(as: ReplyRequest.self, context: context)
            } catch {
                return WorkloadJSON.response(["error": "send {\"message\": \"…\", \"history\": [...]}"], status: .badRequest)
            }
            let history = body.history ?? []
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    var events = ServerSentEvents()
                    var reply = ""
                    do {
                        for try await token in try await source.reply(to: body.message, history: history) {
                            reply += token
                            try await writer.write(events.event("token", ["text": token]))
                        }
                        try await writer.write(events.event("done", ["reply": reply]))
                    } catch {
                        try await writer.write(events.event("error", ["message": "\(error)"]))
                    }
                    try await writer.finish(nil)
                })
        }
    }

    static func replySource(_ environment: WorkloadEnvironment) -> any ReplySource {
        if let url = environment.variables["AGENT_LLM_URL"], !url.isEmpty {
            return ModelRelay(
                endpoint: ModelRelay.endpoint(for: url),
                model: environment.variables["AGENT_LLM_MODEL"].flatMap { $0.isEmpty ? nil : $0 } ?? ModelRelay.defaultModel,
                key: environment.variables["AGENT_LLM_KEY"].flatMap { $0.isEmpty ? nil : $0 })
        }
        let delay = Int(environment.variables["AGENT_TOKEN_DELAY_MS"] ?? "") ?? 40
        return BuiltInAssistant(environment: environment, tokenDelay: .milliseconds(max(0, delay)))
    }
}

/// One earlier turn of the conversation, as chat-completions APIs take it.
struct ChatTurn: Codable, Sendable {
    let role: String
    let content: String
}

/// Where replies come from: the built-in assistant or a model behind an HTTP API. The
/// tokens arrive as they are made; a failure before the first one is thrown at once.
protocol ReplySource: Sendable {
    func reply(to message: String, history: [ChatTurn]) async throws -> any AsyncSequence<String, any Error>
}

/// Numbers and formats server-sent events.
struct ServerSentEvents {
    private var nextID = 1

    mutating func event(_ name: String, _ fields: [String: String]) -> ByteBuffer {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        defer { nextID += 1 }
        return ByteBuffer(string: "id: \(nextID)\nevent: \(name)\ndata: \(String(decoding: data, as: UTF8.self))\n\n")
    }
}
