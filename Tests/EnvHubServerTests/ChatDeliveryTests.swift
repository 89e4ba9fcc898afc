import EnvHubServer
import EnvHubTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// What chat delivery promises under stress: a slow client never holds up the room, and an
/// acknowledged message survives the hub being killed.
@Suite struct ChatDeliveryTests {
    /// A client that stops reading is closed with 4008 once 1 MiB waits for it, while a
    /// client that reads gets every message.
    @Test func aSlowClientIsDisconnectedAndNeverSlowsTheRoom() async throws {
        try await ChatTests.withChat { hub, port, _, alice, bob in
            let slow = try RawSocket(port: port, timeoutSeconds: 60, receiveBuffer: 4096)
            slow.send("GET /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(bob)\r\nUpgrade: websocket\r\n"
                + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            _ = try await slow.receive { $0.contains("\r\n\r\n") }
            slow.sendWebSocketText(#"{"type": "subscribe", "room": "general"}"#)
            _ = try await slow.receive { $0.contains("\"subscribed\"") }

            let count = 2_500
            let text = String(repeating: "z", count: 3_990)
            try await ChatSession.open(port: port, token: alice) { fast in
                try await fast.send(["type": "subscribe", "room": "general"])
                _ = try await fast.next("subscribed")
                // Posted from eight clients at once: ~10 MB for the room.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for lane in 0..<8 {
                        group.addTask {
                            for number in stride(from: lane, to: count, by: 8) {
                                let sent = try await hub.request(.post, "/api/rooms/general/messages", token: alice, json: ["text": "\(number) \(text)"])
                                #expect(sent.status == .created)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                _ = try await fast.next("message", timeout: .seconds(60)) { $0.messageID == count }
                #expect(fast.all("message").compactMap(\.messageID) == Array(1...count))
            }
            // Reading now, the slow client finds the close frame that says why, then the end.
            let seen = try await slow.receive { _ in false }
            #expect(seen.contains("too slow: more than 1 MiB of frames waiting"))
            #expect(seen.components(separatedBy: "\"type\":\"message\"").count - 1 < count)
        }
    }

    /// Sends fired back to back on one socket are stored, numbered and acknowledged in the
    /// order they were sent.
    @Test func oneSocketsSendsKeepTheirOrder() async throws {
        try await ChatTests.withChat { _, port, _, alice, _ in
            try await ChatSession.open(port: port, token: alice) { socket in
                for number in 0..<200 {
                    try await socket.send(["type": "send", "room": "general", "text": "line \(number)", "ref": "\(number)"])
                }
                _ = try await socket.next("ack", timeout: .seconds(60)) { $0["ref"] as? String == "199" }
                let acks = socket.all("ack")
                #expect(acks.compactMap { $0["ref"] as? String } == (0..<200).map(String.init))
                #expect(acks.compactMap(\.messageID) == Array(1...200))
            }
        }
    }

    /// `kill -9` of the hub during a burst of sends: every acknowledged message is in the
    /// history after a restart, once.
    @Test func everyAcknowledgedMessageSurvivesAKilledHub() async throws {
        try await TestDatabase.sqlite.withLocation { location async throws in
            let env = ["ENVHUB_DATA_DIR": location.dataDirectory, "ENVHUB_ADMIN_PASSWORD": "admin-password-1"]
            let first = try EnvHubProcess(["serve", "--port", "0"], env: env)
            var api = HubRestartTests.API(port: try await first.waitForPort())
            api.token = try await api.call("POST", "/api/auth/login", ["username": "admin", "password": "admin-password-1"])
                .object["token"] as? String ?? ""
            #expect(try await api.call("POST", "/api/rooms", ["name": "burst"]).status == 201)
            let opened = NIOLockedValueBox<ChatSession?>(nil)
            let token = api.token
            // Ends with an error: the hub dies under it.
            _ = try? await ChatSession.open(port: api.port, token: token) { socket in
                opened.withLockedValue { $0 = socket }
                for number in 0..<400 {
                    try await socket.send(["type": "send", "room": "burst", "text": "burst \(number)", "key": "k\(number)"])
                    if number == 150 {
                        _ = try await socket.next("ack", timeout: .seconds(60)) { ($0.messageID ?? 0) >= 20 }
                        first.kill()
                        break
                    }
                }
                _ = try await waitFor("the socket to end") { socket.ended ? true : nil }
            }
            let acknowledged = (opened.withLockedValue { $0 }?.all("ack") ?? []).compactMap { frame -> (key: String, id: Int)? in
                guard let key = frame["key"] as? String, let id = frame.messageID else { return nil }
                return (key, id)
            }
            _ = try await first.waitForExit()
            #expect(acknowledged.count >= 20)

            let second = try EnvHubProcess(["serve", "--port", "0"], env: env)
            defer { second.kill() }
            api = HubRestartTests.API(port: try await second.waitForPort())
            api.token = token
            var history: [Int: String] = [:]
            var before = Int.max
            while true {
                let page = try await api.call("GET", "/api/rooms/burst/messages?limit=100" + (before == .max ? "" : "&before=\(before)"))
                let messages = page.object["messages"] as? [[String: Any]] ?? []
                for message in messages {
                    if let id = message["id"] as? Int, let text = message["text"] as? String { history[id] = text }
                }
                guard page.object["hasMore"] as? Bool == true, let oldest = messages.first?["id"] as? Int else { break }
                before = oldest
            }
            for (key, id) in acknowledged {
                #expect(history[id] == "burst \(key.dropFirst())", "acknowledged \(key) as \(id)")
            }
            #expect(Set(history.values).count == history.count, "a message was stored twice")
            second.terminate()
            _ = try await second.waitForExit()
        }
    }
}
