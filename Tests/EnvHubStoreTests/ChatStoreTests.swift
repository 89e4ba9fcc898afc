import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import Testing

/// Chat's storage rules, on SQLite and PostgreSQL alike: ids without gaps or duplicates under
/// concurrent sends, one message per idempotency key, history surviving a deleted author.
@Suite struct ChatStoreTests {
    static let now = StoreTests.now

    /// The user alice and the room `general` she made.
    static func aliceAndHerRoom(in store: SQLStore) async throws -> (User, RoomName) {
        let alice = try await store.createUser(name: StoreTests.alice, role: .user, passwordHash: "a", profile: Profile(), at: now)
        let room = RoomName(unchecked: "general")
        _ = try await store.createRoom(
            Room(id: UUID().uuidString, name: room, description: "", createdBy: alice.name, createdAt: now, lastMessageID: 0),
            creatorID: alice.id)
        return (alice, room)
    }

    /// What a socket that fell behind stores in one go: in the order given, a repeated key
    /// replayed (also within the batch), an unknown room nil, the rest stored.
    @Test(arguments: TestDatabase.allCases)
    func aBatchOfPostsIsStoredInOrderInOneGo(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let (alice, room) = try await Self.aliceAndHerRoom(in: store)
            _ = try await store.postMessage(room: room, author: alice, text: "before", key: "k1", at: Self.now)
            let results = try await store.postMessages([
                MessagePost(room: room, text: "one", key: nil),
                MessagePost(room: room, text: "again", key: "k1"),
                MessagePost(room: RoomName(unchecked: "nowhere"), text: "lost", key: nil),
                MessagePost(room: room, text: "two", key: "k2"),
                MessagePost(room: room, text: "two again", key: "k2"),
            ], author: alice, at: Self.now)
            #expect(results.map { $0?.message.id } == [2, 1, nil, 3, 3])
            #expect(results.map { $0?.replayed } == [false, true, nil, false, true])
            #expect(try await store.messages(in: room, before: nil, after: nil, limit: 10).map(\.text) == ["before", "one", "two"])
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func concurrentSendsGetConsecutiveIdsAndARepeatedKeyStoresOnce(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let (alice, room) = try await Self.aliceAndHerRoom(in: store)
            await #expect(throws: EnvHubError.self) {
                _ = try await store.createRoom(
                    Room(id: UUID().uuidString, name: room, description: "", createdBy: nil, createdAt: Self.now, lastMessageID: 0),
                    creatorID: alice.id)
            }
            // 20 different messages and 10 copies of one keyed message, all at once.
            let results = try await withThrowingTaskGroup(of: (ChatMessage, Bool)?.self) { group in
                for number in 0..<20 {
                    group.addTask { try await store.postMessage(room: room, author: alice, text: "m\(number)", key: nil, at: Self.now) }
                }
                for _ in 0..<10 {
                    group.addTask { try await store.postMessage(room: room, author: alice, text: "keyed", key: "k", at: Self.now) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let posted = results.compactMap { $0 }
            #expect(posted.count == 30)
            let keyed = posted.filter { $0.0.text == "keyed" }
            #expect(Set(keyed.map(\.0.id)).count == 1, "one keyed message")
            #expect(keyed.filter { !$0.1 }.count == 1, "stored once, replayed nine times")
            let history = try await store.messages(in: room, before: nil, after: nil, limit: 100)
            #expect(history.map(\.id) == Array(1...21))
            #expect(try await store.messages(in: room, before: nil, after: 18, limit: 100).map(\.id) == [19, 20, 21])
            #expect(try await store.postMessage(room: RoomName(unchecked: "nowhere"), author: alice, text: "x", key: nil, at: Self.now) == nil)

            // Deleting the author keeps the history, under their name.
            #expect(try await store.deleteUser(named: alice.name))
            #expect(try await store.messages(in: room, before: nil, after: nil, limit: 1).first?.author == alice.name.rawValue)
            let summary = try #require(try await store.roomSummaries(for: "nobody", named: room).first)
            #expect(summary.room.createdBy == nil)
            #expect(summary.messageCount == 21 && summary.unread == 21)
            #expect(try await store.chatCounts(since: Self.now.addingTimeInterval(-1)) == (rooms: 1, messages: 21, recentMessages: 21))
        }
    }
}
