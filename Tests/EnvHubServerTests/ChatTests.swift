import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

/// Rooms and messages over HTTP and the chat socket (docs/chat.md), with real sockets.
@Suite struct ChatTests {
    /// A live hub with users alice and bob (not admins) and a room `general`.
    static func withChat(
        on database: TestDatabase = .sqlite,
        _ body: @escaping @Sendable (_ hub: TestHub, _ port: Int, _ admin: String, _ alice: String, _ bob: String) async throws -> Void
    ) async throws {
        try await TestHub.run(on: database, live: true) { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            let bob = try await hub.createUser("bob", adminToken: admin)
            #expect(try await hub.request(.post, "/api/rooms", token: alice, json: ["name": "general", "description": "Everyone"]).status == .created)
            try await body(hub, try #require(hub.client.port), admin, alice, bob)
        }
    }

    @Test func roomsAreCreatedListedAndDeletedByAdminsOnly() async throws {
        try await Self.withChat { hub, _, admin, alice, bob in
            #expect(try await hub.request(.post, "/api/rooms", token: bob, json: ["name": "general"]).status == .conflict)
            #expect(try await hub.request(.post, "/api/rooms", token: bob, json: ["name": "Bad Name"]).errorCode == "invalid_field")
            #expect(try await hub.request(.post, "/api/rooms", json: ["name": "anon"]).status == .unauthorized)
            let long = String(repeating: "d", count: 501)
            #expect(try await hub.request(.post, "/api/rooms", token: bob, json: ["name": "x", "description": long]).status == .badRequest)
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: alice, json: ["text": "hi bob"]).status == .created)
            let list = try await hub.request(.get, "/api/rooms", token: bob)
            let rooms = try #require(list.object["rooms"] as? [[String: Any]])
            #expect(rooms.count == 1)
            #expect(rooms[0]["name"] as? String == "general")
            #expect(rooms[0]["createdBy"] as? String == "alice")
            #expect(rooms[0]["members"] as? Int == 1)
            #expect(rooms[0]["messageCount"] as? Int == 1)
            #expect(rooms[0]["unread"] as? Int == 1)
            #expect((rooms[0]["lastMessage"] as? [String: Any])?["text"] as? String == "hi bob")
            // Alice's own message is not unread for her; bob's marker clears his.
            #expect(try await hub.request(.get, "/api/rooms/general", token: alice).object["unread"] as? Int == 0)
            #expect(try await hub.request(.post, "/api/rooms/general/read", token: bob, json: ["id": 1]).status == .noContent)
            let seen = try await hub.request(.get, "/api/rooms/general", token: bob).object
            #expect(seen["unread"] as? Int == 0)
            #expect(seen["members"] as? Int == 2)
            #expect(try await hub.request(.delete, "/api/rooms/general", token: alice).status == .forbidden)
            #expect(try await hub.request(.delete, "/api/rooms/general", token: admin).status == .noContent)
            #expect(try await hub.request(.get, "/api/rooms/general/messages", token: alice).status == .notFound)
            #expect(try await hub.request(.delete, "/api/rooms/general", token: admin).status == .notFound)
        }
    }

    @Test func messagesAreStoredOnceAndPagedOldestFirst() async throws {
        try await Self.withChat { hub, _, admin, alice, bob in
            for number in 1...7 {
                let sent = try await hub.request(.post, "/api/rooms/general/messages", token: alice, json: ["text": "  message \(number) "])
                #expect(sent.status == .created)
                #expect(sent.object["id"] as? Int == number)
                #expect(sent.object["text"] as? String == "message \(number)")
            }
            // A retried send with the same key (body or header) stores nothing new.
            let first = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "once", "key": "k-1"])
            let again = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "once", "key": "k-1"])
            let header = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "once"],
                                               headers: [HTTPField.Name("Idempotency-Key")!: "k-1"])
            #expect(first.status == .created && again.status == .ok && header.status == .ok)
            #expect(first.object["id"] as? Int == 8 && again.object["id"] as? Int == 8 && header.object["id"] as? Int == 8)
            // The same key from another user is another message.
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: alice, json: ["text": "mine", "key": "k-1"]).object["id"] as? Int == 9)

            let newest = try await hub.request(.get, "/api/rooms/general/messages?limit=3", token: bob).object
            #expect((newest["messages"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [7, 8, 9])
            #expect(newest["hasMore"] as? Bool == true)
            let older = try await hub.request(.get, "/api/rooms/general/messages?before=7&limit=100", token: bob).object
            #expect((older["messages"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [1, 2, 3, 4, 5, 6])
            #expect(older["hasMore"] as? Bool == false)
            for bad in ["limit=0", "limit=101", "limit=x", "before=-1"] {
                #expect(try await hub.request(.get, "/api/rooms/general/messages?\(bad)", token: bob).errorCode == "invalid_field", "\(bad)")
            }
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "   "]).errorCode == "invalid_field")
            let tooLong = String(repeating: "é", count: 4_001)
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": tooLong]).errorCode == "invalid_field")
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": String(tooLong.dropFirst())]).status == .created)
            #expect(try await hub.request(.post, "/api/rooms/nowhere/messages", token: bob, json: ["text": "hi"]).status == .notFound)
            #expect(try await hub.request(.post, "/api/rooms/general/messages", token: bob, rawBody: "{").status == .badRequest)

            // Authors edit and delete their own; admins anyone's; others nobody's.
            #expect(try await hub.request(.patch, "/api/rooms/general/messages/1", token: bob, json: ["text": "no"]).status == .forbidden)
            let edited = try await hub.request(.patch, "/api/rooms/general/messages/1", token: alice, json: ["text": "first!"])
            #expect(edited.object["text"] as? String == "first!")
            #expect(edited.object["editedAt"] != nil)
            #expect(try await hub.request(.patch, "/api/rooms/general/messages/2", token: admin, json: ["text": "moderated"]).status == .ok)
            #expect(try await hub.request(.delete, "/api/rooms/general/messages/3", token: bob).status == .forbidden)
            #expect(try await hub.request(.delete, "/api/rooms/general/messages/3", token: alice).status == .noContent)
            #expect(try await hub.request(.delete, "/api/rooms/general/messages/99", token: alice).status == .notFound)
            let start = try await hub.request(.get, "/api/rooms/general/messages?before=4", token: bob).object["messages"] as? [[String: Any]]
            #expect(start?.map { $0["text"] as? String } == ["first!", "moderated", ""])
            #expect(start?.map { $0["deleted"] as? Bool } == [false, false, true])
        }
    }

    /// Two users, two sockets: each sees the other's messages live, who is online, who types,
    /// and edits and deletions made over HTTP.
    @Test func twoUsersChatLive() async throws {
        try await Self.withChat { hub, port, _, alice, bob in
            let bobSubscribed = AsyncGate()
            let aliceDone = AsyncGate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await ChatSession.open(port: port, token: bob) { socket in
                        try await socket.send(["type": "subscribe", "room": "general", "ref": "b"])
                        let subscribed = try await socket.next("subscribed")
                        #expect(subscribed["ref"] as? String == "b")
                        #expect(subscribed["last"] as? Int == 0)
                        bobSubscribed.open()
                        _ = try await socket.next("presence") { ($0["online"] as? [String]) == ["alice", "bob"] }
                        let typing = try await socket.next("typing")
                        #expect(typing["user"] as? String == "alice")
                        let message = try await socket.next("message")
                        #expect(message.messageText == "hello bob")
                        #expect((message["message"] as? [String: Any])?["author"] as? String == "alice")
                        try await socket.send(["type": "send", "room": "general", "text": "hi alice", "key": "b-1"])
                        let ack = try await socket.next("ack")
                        #expect(ack["key"] as? String == "b-1" && ack.messageID == 2)
                        let edited = try await socket.next("edited")
                        #expect(edited.messageText == "hello bob!")
                        let deleted = try await socket.next("deleted")
                        #expect(deleted["id"] as? Int == 1)
                        try await aliceDone.wait()
                        _ = try await socket.next("presence") { ($0["online"] as? [String]) == ["bob"] }
                        #expect(socket.all("typing").count == 1)  // never its own
                    }
                }
                group.addTask {
                    try await bobSubscribed.wait()
                    try await ChatSession.open(port: port, token: alice) { socket in
                        try await socket.send(["type": "subscribe", "room": "general"])
                        let subscribed = try await socket.next("subscribed")
                        #expect(subscribed["online"] as? [String] == ["alice", "bob"])
                        try await socket.send(["type": "typing", "room": "general"])
                        try await socket.send(["type": "send", "room": "general", "text": "hello bob", "ref": "a-1"])
                        let ack = try await socket.next("ack")
                        #expect(ack["ref"] as? String == "a-1" && ack.messageID == 1)
                        let reply = try await socket.next("message") { $0.messageID == 2 }
                        #expect(reply.messageText == "hi alice")
                        let stats = try await hub.request(.get, "/api/stats", token: alice).object
                        #expect(stats["usersOnline"] as? Int == 2)
                        #expect(stats["rooms"] as? Int == 1)
                        #expect(stats["messages"] as? Int == 2 && stats["messagesLast24h"] as? Int == 2)
                        #expect(try await hub.request(.patch, "/api/rooms/general/messages/1", token: alice, json: ["text": "hello bob!"]).status == .ok)
                        #expect(try await hub.request(.delete, "/api/rooms/general/messages/1", token: alice).status == .noContent)
                        _ = try await socket.next("deleted")
                    }
                    aliceDone.open()
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func badFramesGetAnErrorAndTheSocketStaysUsable() async throws {
        try await Self.withChat { _, port, _, alice, _ in
            try await ChatSession.open(port: port, token: alice) { socket in
                try await socket.sendText("not json")
                #expect(try await socket.next("error")["code"] as? String == "bad_frame")
                try await socket.sendBinary([1, 2, 3])
                #expect(try await socket.next("error")["code"] as? String == "bad_frame")
                try await socket.send(["type": "dance", "ref": "r1"])
                let unknown = try await socket.next("error")
                #expect(unknown["code"] as? String == "bad_frame" && unknown["ref"] as? String == "r1")
                try await socket.send(["type": "subscribe", "room": "nowhere"])
                #expect(try await socket.next("error")["code"] as? String == "not_found")
                try await socket.send(["type": "subscribe"])
                #expect(try await socket.next("error")["code"] as? String == "invalid_field")
                try await socket.send(["type": "send", "room": "general", "text": ""])
                #expect(try await socket.next("error")["code"] as? String == "invalid_field")
                try await socket.send(["type": "typing", "room": "general"])
                #expect(try await socket.next("error")["code"] as? String == "not_subscribed")
                try await socket.sendText("{\"type\": \"send\", \"room\": \"general\", \"text\": \"" + String(repeating: "x", count: 70_000) + "\"}")
                #expect(try await socket.next("error")["code"] as? String == "too_large")
                try await socket.send(["type": "send", "room": "general", "text": "still here", "ref": "ok"])
                #expect(try await socket.next("ack")["ref"] as? String == "ok")
                try await socket.send(["type": "ping", "ref": "p"])
                #expect(try await socket.next("pong")["ref"] as? String == "p")
            }
        }
    }

    @Test func aSocketNeedsASession() async throws {
        try await Self.withChat { hub, port, _, _, _ in
            let answer = try await rawHTTPExchange(port: port, """
                GET /api/chat HTTP/1.1\r
                Host: 127.0.0.1\r
                Upgrade: websocket\r
                Connection: Upgrade\r
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
                Sec-WebSocket-Version: 13\r
                \r\n
                """)
            #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer)")
            #expect(answer.contains("\"unauthenticated\""))
            _ = hub
        }
    }

    /// A client that comes back with the last id it saw gets what it missed, in order, then
    /// live messages, each once.
    @Test func reconnectingWithTheLastSeenIdDeliversWhatWasMissed() async throws {
        try await Self.withChat { hub, port, _, alice, bob in
            for number in 1...3 {
                _ = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "before \(number)"])
            }
            try await ChatSession.open(port: port, token: alice) { socket in
                try await socket.send(["type": "subscribe", "room": "general", "since": 1])
                #expect(try await socket.next("subscribed")["last"] as? Int == 3)
                #expect(try await socket.next("message").messageID == 2)
                #expect(try await socket.next("message").messageID == 3)
            }
            for number in 4...6 {
                _ = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "missed \(number)"])
            }
            try await ChatSession.open(port: port, token: alice) { socket in
                try await socket.send(["type": "subscribe", "room": "general", "since": 3])
                _ = try await socket.next("subscribed")
                _ = try await hub.request(.post, "/api/rooms/general/messages", token: bob, json: ["text": "live 7"])
                _ = try await socket.next("message") { $0.messageID == 7 }
                #expect(socket.all("message").compactMap(\.messageID) == [4, 5, 6, 7])
            }
        }
    }

    /// With PostgreSQL, a message sent through one hub reaches a socket on another, and
    /// presence is the union of both.
    @Test func messagesAndPresenceCrossReplicas() async throws {
        try await ReplicaTests.withReplicas(live: true) { first, second in
            let admin = try await first.adminToken()
            let alice = try await first.createUser("alice", adminToken: admin)
            let bob = try await first.createUser("bob", adminToken: admin)
            #expect(try await first.request(.post, "/api/rooms", token: alice, json: ["name": "general"]).status == .created)
            let firstPort = try #require(first.client.port)
            let secondPort = try #require(second.client.port)
            let aliceSubscribed = AsyncGate()
            let bobDone = AsyncGate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await ChatSession.open(port: firstPort, token: alice) { socket in
                        try await socket.send(["type": "subscribe", "room": "general"])
                        _ = try await socket.next("subscribed")
                        aliceSubscribed.open()
                        _ = try await socket.next("presence") { ($0["online"] as? [String]) == ["alice", "bob"] }
                        let message = try await socket.next("message")
                        #expect(message.messageText == "from the other replica")
                        try await bobDone.wait()
                        _ = try await socket.next("presence") { ($0["online"] as? [String]) == ["alice"] }
                    }
                }
                group.addTask {
                    try await aliceSubscribed.wait()
                    try await ChatSession.open(port: secondPort, token: bob) { socket in
                        try await socket.send(["type": "subscribe", "room": "general"])
                        // Who is online comes with the subscription, and changes as presence frames.
                        if try await socket.next("subscribed")["online"] as? [String] != ["alice", "bob"] {
                            _ = try await socket.next("presence") { ($0["online"] as? [String]) == ["alice", "bob"] }
                        }
                        try await socket.send(["type": "send", "room": "general", "text": "from the other replica"])
                        _ = try await socket.next("ack")
                    }
                    bobDone.open()
                }
                try await group.waitForAll()
            }
        }
    }
}

/// Opens once; everyone waiting then goes on.
final class AsyncGate: Sendable {
    private let isOpen = NIOLockedValueBox(false)
    func open() { isOpen.withLockedValue { $0 = true } }
    func wait() async throws { _ = try await waitFor("a gate to open") { isOpen.withLockedValue { $0 } ? true : nil } }
}
