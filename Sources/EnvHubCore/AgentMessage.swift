import Foundation

/// One entry of a project's conversation with its agent (docs/agent.md): a user's message, or
/// the agent's reply to one, as it ended.
public struct AgentMessage: Sendable, Equatable {
    public static let maxCharacters = 32_000

    public enum Role: String, Sendable, Codable {
        case user
        case assistant
    }

    /// How a reply ended. A user's message is always `complete`.
    public enum Status: String, Sendable, Codable {
        case complete
        /// The agent could not be reached, answered with an error or broke off; `content` is what
        /// it had sent until then.
        case failed
        /// Every client left before the reply was done, so the hub stopped asking for it.
        case cancelled
    }

    /// Counts up from 1 within the project's conversation, in the order entries were stored.
    public var id: Int64
    public var role: Role
    public var content: String
    /// Who sent a user's message (the owner or an admin); nil for replies.
    public var author: String?
    public var status: Status
    /// What went wrong, for a failed reply.
    public var error: String?
    /// The id of the message a reply answers.
    public var replyTo: Int64?
    public var createdAt: Date

    public init(
        id: Int64, role: Role, content: String, author: String? = nil, status: Status = .complete, error: String? = nil,
        replyTo: Int64? = nil, createdAt: Date
    ) {
        self.id = id
        self.role = role
        self.content = content
        self.author = author
        self.status = status
        self.error = error
        self.replyTo = replyTo
        self.createdAt = createdAt
    }

    /// A user's message as it is stored: without surrounding white space, 1 to `maxCharacters`
    /// characters (Unicode scalars).
    public static func validated(message: String) throws(EnvHubError) -> String {
        let trimmed = message.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { throw .invalidField("message", "message must not be empty") }
        if trimmed.unicodeScalars.count > maxCharacters {
            throw .invalidField("message", "message must be at most \(maxCharacters) characters")
        }
        return trimmed
    }
}
