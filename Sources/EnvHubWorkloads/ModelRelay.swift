import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Relays a message to an OpenAI-compatible chat-completions endpoint with `"stream": true`
/// and hands out the content of each streamed delta as it arrives.
struct ModelRelay: ReplySource {
    static let defaultModel = "gpt-4o-mini"
    static let systemPrompt = "You are the agent of an envhub project. Answer briefly."

    let endpoint: String
    let model: String
    let key: String?

    /// One client for the life of the process. An unreachable model fails at once instead of
    /// being retried until the request's deadline, so the user hears about it.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    /// `AGENT_LLM_URL` may name the API's base (`http://host/v1`) or the endpoint itself.
    static func endpoint(for url: String) -> String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return base.hasSuffix("/chat/completions") ? base : base + "/chat/completions"
    }

    struct CompletionRequest: Encodable {
        let model: String
        let stream: Bool
        let messages: [ChatTurn]
    }

    func reply(to message: String, history: [ChatTurn]) async throws -> any AsyncSequence<String, any Error> {
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        let turns = [ChatTurn(role: "system", content: Self.systemPrompt)] + history + [ChatTurn(role: "user", content: message)]
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(CompletionRequest(model: model, stream: true, messages: turns))))
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        guard (200..<300).contains(response.status.code) else {
            let detail = String(buffer: try await response.body.collect(upTo: 4096))
            throw RelayError("the model endpoint answered \(response.status.code): \(detail.prefix(500))")
        }
        return CompletionDeltas(body: response.body)
    }
}

struct RelayError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The `choices[0].delta.content` strings of a chat-completions event stream, until `[DONE]`.
struct CompletionDeltas: AsyncSequence {
    typealias Element = String
    let body: HTTPClientResponse.Body

    struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: HTTPClientResponse.Body.AsyncIterator
        var pending: [UInt8] = []
        var finished = false

        mutating func next() async throws -> String? {
            while !finished {
                if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    pending.removeSubrange(...newline)
                    if let token = try token(in: line) { return token }
                    continue
                }
                guard let chunk = try await chunks.next() else {
                    // A last line without a newline still counts.
                    finished = true
                    let line = String(decoding: pending, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    pending = []
                    return try token(in: line)
                }
                pending.append(contentsOf: chunk.readableBytesView)
                if pending.count > 1 << 20 { throw RelayError("the model endpoint sent a line over 1 MiB") }
            }
            return nil
        }

        /// The content of one `data:` line; nil for other lines and empty deltas.
        private mutating func token(in line: String) throws -> String? {
            guard line.hasPrefix("data:") else { return nil }
            let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
            if payload == "[DONE]" {
                finished = true
                return nil
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else {
                throw RelayError("the model endpoint sent an event that is not JSON: \(payload.prefix(200))")
            }
            if let error = object["error"] as? [String: Any] {
                throw RelayError("the model endpoint reported: \(error["message"] as? String ?? "an error")")
            }
            let choices = object["choices"] as? [[String: Any]]
            let content = (choices?.first?["delta"] as? [String: Any])?["content"] as? String
            return content?.isEmpty == false ? content : nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: body.makeAsyncIterator()) }
}
