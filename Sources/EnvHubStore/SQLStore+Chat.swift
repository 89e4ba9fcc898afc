import EnvHubCore
import Foundation

extension SQLStore: ChatStore {
    private static let roomSelect = """
        SELECT r.id, r.name, r.description, u.name AS creator, r.created_at, r.last_message_id
        FROM rooms r LEFT JOIN users u ON u.id = r.created_by
        """
    private static let messageColumns = "m.id, m.author_name, m.text, m.created_at, m.edited_at, m.deleted"

    public func createRoom(_ room: Room, creatorID: String) async throws -> Room {
        try await Self.conflictOnDuplicate("room \(room.name) already exists") {
            try await write { sql in
                try await sql.query(
                    "INSERT INTO rooms (id, name, description, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
                    [.text(room.id), .text(room.name.rawValue), .text(room.description), .text(creatorID), .date(room.createdAt)])
                return (room, [])
            }
        }
    }

    public func room(named name: RoomName) async throws -> Room? {
        try await database.query("\(Self.roomSelect) WHERE r.name = $1", [.text(name.rawValue)]).first.map(Self.room(from:))
    }

    public func roomSummaries(for userID: String, named name: RoomName?) async throws -> [RoomSummary] {
        // Ids have no gaps and messages are never removed one by one, so the newest id is the count.
        try await database.query(
            """
            SELECT r.id, r.name, r.description, u.name AS creator, r.created_at, r.last_message_id,
                (SELECT COUNT(*) FROM room_reads rr WHERE rr.room_id = r.id) AS members,
                (SELECT COUNT(*) FROM messages n WHERE n.room_id = r.id AND NOT n.deleted
                    AND (n.author_id IS NULL OR n.author_id <> $1)
                    AND n.id > COALESCE((SELECT rr.last_read_id FROM room_reads rr WHERE rr.room_id = r.id AND rr.user_id = $1), 0)
                ) AS unread,
                m.id AS last_id, m.author_name, m.text, m.created_at AS last_created_at, m.edited_at, m.deleted
            FROM rooms r LEFT JOIN users u ON u.id = r.created_by
            LEFT JOIN messages m ON m.room_id = r.id AND m.id = r.last_message_id
            WHERE $2 = '' OR r.name = $2
            ORDER BY r.name
            """, [.text(userID), .text(name?.rawValue ?? "")]
        ).map { row in
            let room = try Self.room(from: row)
            var last: ChatMessage?
            if let id = try row.optionalInt("last_id") {
                last = ChatMessage(room: room.name, id: id, author: try row.text("author_name"), text: try row.text("text"),
                                   createdAt: try row.date("last_created_at"), editedAt: try row.optionalDate("edited_at"),
                                   deleted: try row.bool("deleted"))
            }
            return RoomSummary(room: room, members: Int(try row.int("members")), messageCount: Int(room.lastMessageID),
                               lastMessage: last, unread: Int(try row.int("unread")))
        }
    }

    public func deleteRoom(named name: RoomName) async throws -> Bool {
        try await write { sql in
            let deleted = try await sql.query("DELETE FROM rooms WHERE name = $1 RETURNING id", [.text(name.rawValue)])
            return (!deleted.isEmpty, deleted.isEmpty ? [] : [Self.announce(.roomDeleted(name))])
        }
    }

    public func postMessages(_ posts: [MessagePost], author: User, at date: Date) async throws
        -> [(message: ChatMessage, replayed: Bool)?] {
        do {
            return try await write { sql in
                var results: [(message: ChatMessage, replayed: Bool)?] = []
                var changes: [StoreChange] = []
                for post in posts {
                    let (result, changed) = try await Self.post(post, author: author, at: date, on: sql)
                    results.append(result)
                    changes += changed
                }
                return (results, changes)
            }
        } catch SQLDriverError.uniqueViolation where posts.count > 1 {
            // One of them raced a retry with the same key: one at a time, each settles it.
            var results: [(message: ChatMessage, replayed: Bool)?] = []
            for post in posts { results += try await postMessages([post], author: author, at: date) }
            return results
        } catch SQLDriverError.uniqueViolation(let detail) {
            // The same key, sent twice at once: the other one was stored.
            guard let key = posts[0].key, let stored = try await Self.message(in: posts[0].room, authorID: author.id, key: key, on: database) else {
                throw SQLDriverError.uniqueViolation(detail)
            }
            return [(stored, true)]
        }
    }

    private static func post(_ post: MessagePost, author: User, at date: Date, on sql: any SQLExecutor) async throws
        -> ((message: ChatMessage, replayed: Bool)?, [StoreChange]) {
        if let key = post.key, let stored = try await message(in: post.room, authorID: author.id, key: key, on: sql) {
            return ((stored, true), [])
        }
        // Taking the room's next id locks its row until this transaction ends, so
        // messages commit in id order (and reach other replicas in that order).
        guard let counter = try await sql.query(
            "UPDATE rooms SET last_message_id = last_message_id + 1 WHERE name = $1 RETURNING id, last_message_id",
            [.text(post.room.rawValue)]).first else { return (nil, []) }
        let roomID = try counter.text("id")
        let id = try counter.int("last_message_id")
        try await sql.query(
            """
            INSERT INTO messages (room_id, id, author_id, author_name, text, idempotency_key, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            [.text(roomID), .int(id), .text(author.id), .text(author.name.rawValue), .text(post.text), .optionalText(post.key),
             .date(date)])
        // The author has read what they wrote, and is a member from now on.
        try await moveReadMarker(roomID: roomID, userID: author.id, to: id, on: sql)
        let message = ChatMessage(room: post.room, id: id, author: author.name.rawValue, text: post.text,
                                  createdAt: Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000))
        return ((message, false), [announce(.message(message))])
    }

    public func messages(in room: RoomName, before: Int64?, after: Int64?, limit: Int) async throws -> [ChatMessage] {
        let base = "SELECT \(Self.messageColumns) FROM messages m JOIN rooms r ON r.id = m.room_id WHERE r.name = $1"
        let rows: [SQLRow]
        if let after, before == nil {
            rows = try await database.query("\(base) AND m.id > $2 ORDER BY m.id LIMIT $3",
                                            [.text(room.rawValue), .int(after), .int(Int64(limit))])
        } else {
            rows = try await database.query("\(base) AND m.id < $2 ORDER BY m.id DESC LIMIT $3",
                                            [.text(room.rawValue), .int(before ?? Int64.max), .int(Int64(limit))]).reversed()
        }
        return try rows.map { try Self.message(from: $0, room: room) }
    }

    public func message(in room: RoomName, id: Int64) async throws -> (message: ChatMessage, authorID: String?)? {
        guard let row = try await database.query(
            """
            SELECT \(Self.messageColumns), m.author_id FROM messages m JOIN rooms r ON r.id = m.room_id
            WHERE r.name = $1 AND m.id = $2
            """, [.text(room.rawValue), .int(id)]).first else { return nil }
        return (try Self.message(from: row, room: room), try row.optionalText("author_id"))
    }

    public func editMessage(in room: RoomName, id: Int64, text: String, at date: Date) async throws -> ChatMessage? {
        try await write { sql in
            guard let row = try await sql.query(
                """
                UPDATE messages SET text = $1, edited_at = $2
                WHERE room_id = (SELECT id FROM rooms WHERE name = $3) AND id = $4 AND NOT deleted
                RETURNING id, author_name, text, created_at, edited_at, deleted
                """, [.text(text), .date(date), .text(room.rawValue), .int(id)]).first else { return (nil, []) }
            let message = try Self.message(from: row, room: room)
            return (message, [Self.announce(.edited(message))])
        }
    }

    public func deleteMessage(in room: RoomName, id: Int64) async throws -> ChatMessage? {
        try await write { sql in
            guard let row = try await sql.query(
                """
                UPDATE messages SET text = '', deleted = TRUE
                WHERE room_id = (SELECT id FROM rooms WHERE name = $1) AND id = $2
                RETURNING id, author_name, text, created_at, edited_at, deleted
                """, [.text(room.rawValue), .int(id)]).first else { return (nil, []) }
            return (try Self.message(from: row, room: room), [Self.announce(.deleted(room: room, id: id))])
        }
    }

    public func markRead(in room: RoomName, userID: String, upTo id: Int64) async throws -> Bool {
        try await write { sql in
            guard let roomID = try await sql.query("SELECT id FROM rooms WHERE name = $1", [.text(room.rawValue)]).first?
                .text("id") else { return (false, []) }
            try await Self.moveReadMarker(roomID: roomID, userID: userID, to: id, on: sql)
            return (true, [])
        }
    }

    public func chatCounts(since date: Date) async throws -> (rooms: Int, messages: Int, recentMessages: Int) {
        let row = try await database.query(
            """
            SELECT (SELECT COUNT(*) FROM rooms) AS rooms, (SELECT COUNT(*) FROM messages) AS messages,
                   (SELECT COUNT(*) FROM messages WHERE created_at >= $1) AS recent
            """, [.date(date)]).first
        return (Int(try row?.int("rooms") ?? 0), Int(try row?.int("messages") ?? 0), Int(try row?.int("recent") ?? 0))
    }

    // MARK: helpers

    private static func announce(_ event: ChatEvent) -> StoreChange {
        let message = event.change()
        return .message(topic: message.topic, payload: message.payload)
    }

    private static func moveReadMarker(roomID: String, userID: String, to id: Int64, on sql: any SQLExecutor) async throws {
        try await sql.query(
            """
            INSERT INTO room_reads (room_id, user_id, last_read_id) VALUES ($1, $2, $3)
            ON CONFLICT (room_id, user_id) DO UPDATE SET last_read_id = CASE
                WHEN room_reads.last_read_id > excluded.last_read_id THEN room_reads.last_read_id ELSE excluded.last_read_id END
            """, [.text(roomID), .text(userID), .int(id)])
    }

    private static func message(in room: RoomName, authorID: String, key: String, on sql: any SQLExecutor) async throws -> ChatMessage? {
        try await sql.query(
            """
            SELECT \(messageColumns) FROM messages m JOIN rooms r ON r.id = m.room_id
            WHERE r.name = $1 AND m.author_id = $2 AND m.idempotency_key = $3
            """, [.text(room.rawValue), .text(authorID), .text(key)]).first.map { try message(from: $0, room: room) }
    }

    static func room(from row: SQLRow) throws -> Room {
        Room(id: try row.text("id"), name: RoomName(unchecked: try row.text("name")), description: try row.text("description"),
             createdBy: try row.optionalText("creator").map(UserName.init(unchecked:)), createdAt: try row.date("created_at"),
             lastMessageID: try row.int("last_message_id"))
    }

    static func message(from row: SQLRow, room: RoomName) throws -> ChatMessage {
        ChatMessage(room: room, id: try row.int("id"), author: try row.text("author_name"), text: try row.text("text"),
                    createdAt: try row.date("created_at"), editedAt: try row.optionalDate("edited_at"), deleted: try row.bool("deleted"))
    }
}
