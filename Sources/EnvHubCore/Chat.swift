import Foundation

/// A chat room's name: a DNS label like project names, so it fits in a URL path unchanged.
public struct RoomName: DNSLabelName {
    public static let maxLength = 40
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
}

public struct Room: Sendable, Equatable {
    public var id: String
    public var name: RoomName
    public var description: String
    /// Nil once the creator's account is gone.
    public var createdBy: UserName?
    public var createdAt: Date
    /// The id of the newest message, 0 before the first.
    public var lastMessageID: Int64

    public static let maxDescriptionLength = 500

    public init(id: String, name: RoomName, description: String, createdBy: UserName?, createdAt: Date, lastMessageID: Int64) {
        self.id = id
        self.name = name
        self.description = description
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.lastMessageID = lastMessageID
    }
}

/// A room as one user sees it in the list.
public struct RoomSummary: Sendable, Equatable {
    public var room: Room
    public var members: Int
    public var messageCount: Int
    public var lastMessage: ChatMessage?
    public var unread: Int

    public init(room: Room, members: Int, messageCount: Int, lastMessage: ChatMessage?, unread: Int) {
        self.room = room
        self.members = members
        self.messageCount = messageCount
        self.lastMessage = lastMessage
        self.unread = unread
    }
}

/// A message in a room. `id` counts up from 1 within the room, in the order messages were stored.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var room: RoomName
    public var id: Int64
    public var author: String
    public var text: String
    public var createdAt: Date
    public var editedAt: Date?
    public var deleted: Bool

    public static let maxTextLength = 4_000
    public static let maxKeyLength = 100

    public init(room: RoomName, id: Int64, author: String, text: String, createdAt: Date, editedAt: Date? = nil, deleted: Bool = false) {
        self.room = room
        self.id = id
        self.author = author
        self.text = text
        self.createdAt = createdAt
        self.editedAt = editedAt
        self.deleted = deleted
    }

    /// The text as it will be stored: at most 4,000 characters (Unicode scalars) as sent,
    /// trimmed, and not empty.
    public static func validText(_ text: String, field: String = "text") throws(EnvHubError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { throw .invalidField(field, "\(field) must not be empty") }
        if text.unicodeScalars.count > maxTextLength {
            throw .invalidField(field, "\(field) must be at most \(maxTextLength) characters")
        }
        return trimmed
    }

    /// A client's idempotency key: 1–100 characters.
    public static func validKey(_ key: String?, field: String = "key") throws(EnvHubError) -> String? {
        guard let key else { return nil }
        if key.isEmpty || key.unicodeScalars.count > maxKeyLength {
            throw .invalidField(field, "\(field) must be 1–\(maxKeyLength) characters")
        }
        return key
    }
}

/// What happens in chat, as it travels between hub replicas (`StoreChange.message` with
/// topic `chat`). Sockets get their own frames made from it (docs/chat.md).
public enum ChatEvent: Sendable, Equatable, Codable {
    case message(ChatMessage)
    case edited(ChatMessage)
    /// A message or edit too large for a notification: receivers read it from the store.
    case stored(room: RoomName, id: Int64, edited: Bool)
    case deleted(room: RoomName, id: Int64)
    case roomDeleted(RoomName)
    case typing(room: RoomName, user: UserName)
    /// Which users have a socket subscribed to `room` on one replica (room nil: a socket open
    /// at all), sent on every change and as a heartbeat. A long list comes in parts: the
    /// first replaces what the replica said before, the `continued` ones add to it.
    case presence(replica: String, room: RoomName?, users: [UserName], continued: Bool)
    /// A replica that just started (or lost the feed) asks the others for their presence.
    case presenceWanted(replica: String)

    public static let topic = "chat"
    /// PostgreSQL's NOTIFY takes 8,000 bytes; `StoreChange.message` keeps 1,000 for itself.
    static let maxPayloadBytes = 7_000

    /// The notification for this event; a message or edit that does not fit is sent as `stored`.
    public func change() -> StoreChangeMessage {
        let payload = Self.encode(self)
        if payload.utf8.count <= Self.maxPayloadBytes { return StoreChangeMessage(topic: Self.topic, payload: payload) }
        switch self {
        case .message(let message): return Self.stored(room: message.room, id: message.id, edited: false).change()
        case .edited(let message): return Self.stored(room: message.room, id: message.id, edited: true).change()
        default: return StoreChangeMessage(topic: Self.topic, payload: payload)
        }
    }

    public init(payload: String) throws {
        self = try Self.decoder.decode(ChatEvent.self, from: Data(payload.utf8))
    }

    private static func encode(_ event: ChatEvent) -> String {
        // Encoding strings, numbers and dates cannot fail.
        String(decoding: (try? encoder.encode(event)) ?? Data(), as: UTF8.self)
    }

    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }()

    private static let decoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()
}

/// A topic and payload for `StoreChange.message` (EnvHubCore does not know the store).
public struct StoreChangeMessage: Sendable, Equatable {
    public let topic: String
    public let payload: String
}
