import AsyncHTTPClient
import EnvHubCore
import EnvHubRuntime
import Foundation
import NIOCore
import NIOPosix

/// One request to a project's agent: sends the message with the conversation so far to the
/// exposed component's `messagePath` and publishes each token of the streamed answer as it
/// arrives. Says how the exchange ended; cancelling the task closes the connection to the agent.
struct AgentRelay: Sendable {
    /// The longest reply kept (its UTF-8 bytes, and its tokens, each an event kept in memory
    /// for followers); the agent is cut off beyond it.
    static let maxReplyBytes = 1 << 20
    static let maxTokens = 100_000

    /// One client for the process. Connecting gives up after 5 s, and a refused connection
    /// fails at once; a live stream has no time limit.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(5), read: nil)
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    enum Outcome: Sendable, Equatable {
        /// The agent said `done`, with the whole reply.
        case done(String)
        /// `code` as clients get it in the `error` event (docs/agent.md).
        case failed(code: String, message: String)
    }

    /// Where the agent answers and the path that takes messages.
    let upstream: Endpoint
    let path: String
    let body: AgentRequestJSON

    func run(publishingTo reply: AgentReply) async -> Outcome {
        var request = HTTPClientRequest(url: "http://\(upstream)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response: HTTPClientResponse
        do {
            request.body = .bytes(try JSONWriter.encode(body))
            response = try await Self.client.execute(request, deadline: .distantFuture)
        } catch {
            return .failed(code: "agent_unreachable", message: "the agent could not be reached: \(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            let excerpt = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0).prefix(300) } ?? ""
            return .failed(code: "agent_failed", message: "the agent answered \(response.status.code)"
                + (excerpt.isEmpty ? "" : ": \(excerpt)"))
        }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        guard contentType.lowercased().hasPrefix("text/event-stream") else {
            return .failed(code: "agent_failed", message: "the agent answered \(contentType.isEmpty ? "no content type" : contentType), not text/event-stream")
        }
        var parser = ServerSentEventParser()
        var replyBytes = 0
        var tokens = 0
        do {
            for try await chunk in response.body {
                for event in try parser.feed(chunk) {
                    switch event.type {
                    case "token":
                        guard let token = Self.decode(AgentEventData.Token.self, event.data) else {
                            return .failed(code: "agent_failed", message: "the agent sent a token event without text")
                        }
                        if token.text.isEmpty { continue }
                        replyBytes += token.text.utf8.count
                        tokens += 1
                        guard replyBytes <= Self.maxReplyBytes, tokens <= Self.maxTokens else {
                            return .failed(code: "reply_too_long", message: "the reply is longer than \(Self.maxReplyBytes >> 20) MiB or \(Self.maxTokens) tokens")
                        }
                        try reply.publish("token", data: token, token: token.text)
                    case "done":
                        return .done(Self.decode(AgentEventData.Done.self, event.data)?.reply ?? reply.text)
                    case "error":
                        let message = Self.decode(AgentEventData.AgentFailure.self, event.data)?.message
                        return .failed(code: "agent_error", message: message ?? "the agent reported an error")
                    default:
                        continue  // other events mean nothing to the hub
                    }
                }
            }
            return .failed(code: "agent_disconnected", message: "the agent's stream ended before its reply was done")
        } catch {
            return .failed(code: "agent_disconnected", message: "the agent's stream broke off: \(error)")
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ data: String) -> T? {
        try? JSON.decoder.decode(T.self, from: Data(data.utf8))
    }
}
