import EnvHubCore
import Foundation

/// Each project's conversation with its agent (docs/agent.md): messages and replies under ids
/// that count up within the project. Entries are only ever added.
public protocol ConversationStore: Sendable {
    /// Stores `message` under the project's next id (its `id` is ignored) and returns it as
    /// stored; nil when there is no such project.
    func appendAgentMessage(_ message: AgentMessage, projectID: String) async throws -> AgentMessage?
    /// Up to `limit` entries, oldest first: the newest ones with an id below `before` (all when nil).
    func agentMessages(projectID: String, before: Int64?, limit: Int) async throws -> [AgentMessage]
}

extension SQLStore: ConversationStore {
    public func appendAgentMessage(_ message: AgentMessage, projectID: String) async throws -> AgentMessage? {
        // On PostgreSQL the project's row is locked until the commit, so that two replicas
        // appending at once take turns at the next id; SQLite has one writer anyway.
        let lock = database.kind == .postgres ? " FOR NO KEY UPDATE" : ""
        return try await write { sql in
            guard try await !sql.query("SELECT id FROM projects WHERE id = $1\(lock)", [.text(projectID)]).isEmpty else {
                return (nil, [])
            }
            let next = try await sql.query(
                "SELECT COALESCE(MAX(id), 0) + 1 AS next FROM agent_messages WHERE project_id = $1", [.text(projectID)]
            ).first?.int("next") ?? 1
            var stored = message
            stored.id = next
            try await sql.query(
                """
                INSERT INTO agent_messages (project_id, id, role, content, author_name, status, error, reply_to, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                [.text(projectID), .int(next), .text(message.role.rawValue), .text(message.content),
                 .optionalText(message.author), .text(message.status.rawValue), .optionalText(message.error),
                 message.replyTo.map(SQLValue.int) ?? .null, .date(message.createdAt)])
            // Nothing caches conversations, so there is no change to announce.
            return (stored, [])
        }
    }

    public func agentMessages(projectID: String, before: Int64?, limit: Int) async throws -> [AgentMessage] {
        let rows = try await database.query(
            """
            SELECT id, role, content, author_name, status, error, reply_to, created_at FROM agent_messages
            WHERE project_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3
            """,
            [.text(projectID), .int(before ?? Int64.max), .int(Int64(limit))])
        return try rows.reversed().map { row in
            guard let role = AgentMessage.Role(rawValue: try row.text("role")),
                  let status = AgentMessage.Status(rawValue: try row.text("status"))
            else { throw SQLDriverError.unexpectedColumn("role/status", "a known role and status") }
            return AgentMessage(
                id: try row.int("id"), role: role, content: try row.text("content"), author: try row.optionalText("author_name"),
                status: status, error: try row.optionalText("error"), replyTo: try row.optionalInt("reply_to"),
                createdAt: try row.date("created_at"))
        }
    }
}
