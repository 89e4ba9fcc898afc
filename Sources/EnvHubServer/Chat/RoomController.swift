import EnvHubCore
import EnvHubStore
import Foundation
import HTTPTypes
import Hummingbird

/// Rooms and their messages over HTTP (docs/chat.md). Every signed-in user may read and post
/// everywhere; admins delete rooms; authors and admins edit and delete messages. Writes reach
/// the chat sockets through the store's change feed.
struct RoomController {
    let store: any ChatStore & UserStore

    struct NewRoom: Decodable {
        let name: String
        let description: String?
    }

    struct RoomList: Encodable {
        let rooms: [RoomJSON]
    }

    struct NewMessage: Decodable {
        let text: String
        let key: String?
    }

    struct MessageEdit: Decodable {
        let text: String
    }

    struct ReadMarker: Decodable {
        let id: Int64
    }

    struct MessagePage: Encodable {
        let messages: [ChatMessageJSON]
        let hasMore: Bool
    }

    static let defaultPageSize = 50
    static let maxPageSize = 100

    func addRoutes(to routes: HubRoutes) {
        routes.get("/api/rooms", list)
        routes.post("/api/rooms", create)
        routes.get("/api/rooms/{room}", show)
        routes.delete("/api/rooms/{room}", delete)
        routes.get("/api/rooms/{room}/messages", history)
        routes.post("/api/rooms/{room}/messages", post)
        routes.patch("/api/rooms/{room}/messages/{id}", edit)
        routes.delete("/api/rooms/{room}/messages/{id}", deleteMessage)
        routes.post("/api/rooms/{room}/read", markRead)
    }

    @Sendable func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try .json(RoomList(rooms: try await store.roomSummaries(for: identity.user.id, named: nil).map(RoomJSON.init)))
    }

    @Sendable func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let body = try await JSON.decode(NewRoom.self, from: request, context: context)
        let name = try RoomName(validating: body.name, field: "name")
        let description = body.description ?? ""
        guard description.count <= Room.maxDescriptionLength else {
            throw EnvHubError.invalidField("description", "description must be at most \(Room.maxDescriptionLength) characters")
        }
        let room = try await store.createRoom(
            Room(id: UUID().uuidString.lowercased(), name: name, description: description, createdBy: identity.user.name,
                 createdAt: Date(), lastMessageID: 0),
            creatorID: identity.user.id)
        return try .json(try await summary(of: room.name, for: identity), status: .created)
    }

    @Sendable func show(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try .json(try await summary(of: try roomName(context), for: identity))
    }

    @Sendable func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireAdmin()
        let name = try roomName(context)
        guard try await store.deleteRoom(named: name) else { throw EnvHubError.notFound("no room \(name)") }
        return .noContent()
    }

    /// `?before=ID&limit=N`: the newest `limit` messages below `before`, oldest first.
    @Sendable func history(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireIdentity()
        let name = try await existingRoom(context)
        let query = request.uri.queryParameters
        let limit = try query.get("limit").map { raw -> Int in
            guard let value = Int(raw), (1...Self.maxPageSize).contains(value) else {
                throw EnvHubError.invalidField("limit", "limit must be a number from 1 to \(Self.maxPageSize)")
            }
            return value
        } ?? Self.defaultPageSize
        let before = try query.get("before").map { raw -> Int64 in
            guard let value = Int64(raw), value > 0 else { throw EnvHubError.invalidField("before", "before must be a message id") }
            return value
        }
        // One more than asked says whether there are older ones.
        let messages = try await store.messages(in: name, before: before, after: nil, limit: limit + 1)
        return try .json(MessagePage(messages: messages.suffix(limit).map(ChatMessageJSON.init), hasMore: messages.count > limit))
    }

    /// Stores, then broadcasts; a repeated key answers 200 with the message stored the first time.
    @Sendable func post(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let name = try roomName(context)
        let body = try await JSON.decode(NewMessage.self, from: request, context: context)
        let text = try ChatMessage.validText(body.text)
        let headerKey = try ChatMessage.validKey(request.headers[.idempotencyKey], field: "Idempotency-Key")
        let key = try ChatMessage.validKey(body.key) ?? headerKey
        guard let (message, replayed) = try await store.postMessage(room: name, author: identity.user, text: text, key: key, at: Date())
        else { throw EnvHubError.notFound("no room \(name)") }
        return try .json(ChatMessageJSON(message), status: replayed ? .ok : .created)
    }

    @Sendable func edit(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (name, id) = try await authoredMessage(context)
        let body = try await JSON.decode(MessageEdit.self, from: request, context: context)
        let text = try ChatMessage.validText(body.text)
        guard let edited = try await store.editMessage(in: name, id: id, text: text, at: Date()) else {
            throw EnvHubError.conflict("message \(id) in \(name) is deleted")
        }
        return try .json(ChatMessageJSON(edited))
    }

    @Sendable func deleteMessage(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (name, id) = try await authoredMessage(context)
        _ = try await store.deleteMessage(in: name, id: id)
        return .noContent()
    }

    @Sendable func markRead(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let name = try roomName(context)
        let body = try await JSON.decode(ReadMarker.self, from: request, context: context)
        guard body.id >= 0 else { throw EnvHubError.invalidField("id", "id must be a message id") }
        guard try await store.markRead(in: name, userID: identity.user.id, upTo: body.id) else {
            throw EnvHubError.notFound("no room \(name)")
        }
        return .noContent()
    }

    // MARK: helpers

    private func roomName(_ context: HubRequestContext) throws(EnvHubError) -> RoomName {
        let raw = try context.pathParameter("room")
        guard let name = RoomName(rawValue: raw) else { throw .notFound("no room \(raw)") }
        return name
    }

    private func existingRoom(_ context: HubRequestContext) async throws -> RoomName {
        let name = try roomName(context)
        guard try await store.room(named: name) != nil else { throw EnvHubError.notFound("no room \(name)") }
        return name
    }

    private func summary(of name: RoomName, for identity: Identity) async throws -> RoomJSON {
        guard let summary = try await store.roomSummaries(for: identity.user.id, named: name).first else {
            throw EnvHubError.notFound("no room \(name)")
        }
        return RoomJSON(summary)
    }

    /// The message named by the path, which the caller wrote or, being an admin, may change anyway.
    private func authoredMessage(_ context: HubRequestContext) async throws -> (RoomName, Int64) {
        let identity = try context.requireIdentity()
        let name = try roomName(context)
        let raw = try context.pathParameter("id")
        guard let id = Int64(raw), let (_, authorID) = try await store.message(in: name, id: id) else {
            throw EnvHubError.notFound("no message \(raw) in \(name)")
        }
        guard identity.user.isAdmin || authorID == identity.user.id else {
            throw EnvHubError.forbidden("only its author or an admin may change this message")
        }
        return (name, id)
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
}
