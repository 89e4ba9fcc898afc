import EnvHubCore
import Foundation

/// An entry of a project's conversation as the API shows it. `status` and `replyTo` are only on
/// replies, `author` only on users' messages, `error` only on failed replies.
struct AgentMessageJSON: Encodable {
    let id: Int64
    let role: String
    let content: String
    let author: String?
    let status: String?
    let error: String?
    let replyTo: Int64?
    let createdAt: Date

    init(_ message: AgentMessage) {
        id = message.id
        role = message.role.rawValue
        content = message.content
        author = message.author
        status = message.role == .assistant ? message.status.rawValue : nil
        error = message.error
        replyTo = message.replyTo
        createdAt = message.createdAt
    }
}

/// The `data` of the events of a reply (docs/agent.md).
enum AgentEventData {
    /// `start`: the user's message, as stored.
    struct Start: Encodable {
        let stored: AgentMessageJSON
    }

    /// `token`: the next piece of the reply. Also what the agent sends.
    struct Token: Codable {
        let text: String
    }

    /// `done`: the whole reply, and the reply as stored. The agent sends only `reply`.
    struct Done: Codable {
        let reply: String
    }

    struct DoneStored: Encodable {
        let reply: String
        let stored: AgentMessageJSON?
    }

    /// `error`: what went wrong (`code` as in docs/agent.md), and the failed reply as stored.
    struct Failure: Encodable {
        let code: String
        let message: String
        let stored: AgentMessageJSON?
    }

    /// What the agent sends with its own `error` event.
    struct AgentFailure: Decodable {
        let message: String
    }
}

/// `GET …/messages`.
struct AgentConversationJSON: Encodable {
    let messages: [AgentMessageJSON]
    let hasMore: Bool
}

/// What the hub sends the agent: the new message and the conversation before it.
struct AgentRequestJSON: Encodable {
    struct Turn: Encodable {
        let role: String
        let content: String
    }
    let message: String
    let history: [Turn]
}
