import EnvHubCore
import Foundation

/// A message as the API and the chat socket show it (docs/chat.md).
struct ChatMessageJSON: Encodable {
    let id: Int64
    let room: String
    let author: String
    let text: String
    let createdAt: Date
    let editedAt: Date?
    let deleted: Bool

    init(_ message: ChatMessage) {
        id = message.id
        room = message.room.rawValue
        author = message.author
        text = message.text
        createdAt = message.createdAt
        editedAt = message.editedAt
        deleted = message.deleted
    }
}

/// A room as one user sees it in the list.
struct RoomJSON: Encodable {
    let name: String
    let description: String
    let createdBy: String?
    let createdAt: Date
    let members: Int
    let messageCount: Int
    let lastMessage: ChatMessageJSON?
    let unread: Int

    init(_ summary: RoomSummary) {
        name = summary.room.name.rawValue
        description = summary.room.description
        createdBy = summary.room.createdBy?.rawValue
        createdAt = summary.room.createdAt
        members = summary.members
        messageCount = summary.messageCount
        lastMessage = summary.lastMessage.map(ChatMessageJSON.init)
        unread = summary.unread
    }
}
