import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Two hubs on one PostgreSQL database are two replicas: what one writes, the other's
/// caches must follow through LISTEN/NOTIFY.
@Suite struct ReplicaTests {
    static func withReplicas(live: Bool = false, _ body: @escaping @Sendable (TestHub, TestHub) async throws -> Void) async throws {
        try await TestDatabase.postgres.withLocation { location async throws in
            try await TestHub.run(at: location, live: live) { first in
                try await TestHub.run(at: location, live: live) { second in
                    try await TestHub.eventually("both change feeds to be live") {
                        first.hub.store.changes.isLive && second.hub.store.changes.isLive
                    }
                    try await body(first, second)
                }
            }
        }
    }

    @Test func aProjectWrittenOnOneReplicaIsListedOnTheOther() async throws {
        try await Self.withReplicas { first, second in
            let token = try await first.adminToken()
            #expect(try await second.request(.get, "/api/users/admin/projects", token: token).projectNames == [])
            #expect(try await first.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"]).status == .created)
            try await TestHub.eventually("the second replica to list the new project") {
                try await second.request(.get, "/api/users/admin/projects", token: token).projectNames == ["web"]
            }
            #expect(try await first.request(.delete, "/api/users/admin/projects/web", token: token).status == .noContent)
            try await TestHub.eventually("the second replica to drop the deleted project") {
                try await second.request(.get, "/api/users/admin/projects", token: token).projectNames == []
            }
        }
    }

    /// The gateway's record of use (`last_activity`) is written on one replica and listed on
    /// the other, whose cached list must drop what it showed before.
    @Test func useRecordedOnOneReplicaIsListedOnTheOther() async throws {
        try await Self.withReplicas { first, second in
            let token = try await first.adminToken()
            let created = try await first.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"])
            let id = try #require(created.object["id"] as? String)
            @Sendable func lastUse() async throws -> String? {
                let listed = try await second.request(.get, "/api/users/admin/projects", token: token)
                return (listed.object["projects"] as? [[String: Any]])?.first?["lastActivity"] as? String
            }
            #expect(try await lastUse() == nil, "never used yet (and now in the second replica's memory)")
            try await first.hub.store.recordActivity([id: Date()])
            try await TestHub.eventually("the second replica to list the project's last use") { try await lastUse() != nil }
        }
    }

    @Test func aSessionRevokedOnOneReplicaIsRejectedOnTheOther() async throws {
        try await Self.withReplicas { first, second in
            let token = try await first.adminToken()
            #expect(try await second.request(.get, "/api/auth/me", token: token).status == .ok)
            #expect(try await first.request(.post, "/api/auth/logout", token: token).status == .noContent)
            try await TestHub.eventually("the second replica to reject the revoked token") {
                try await second.request(.get, "/api/auth/me", token: token).status == .unauthorized
            }
        }
    }

    @Test func aReplicaThatLostItsFeedCatchesUpAfterReconnecting() async throws {
        try await Self.withReplicas { first, second in
            let token = try await first.adminToken()
            #expect(try await second.request(.get, "/api/users/admin/projects", token: token).projectNames == [])
            // Cut this database's LISTEN connections (not other tests'), then write while the
            // replicas may not be listening.
            try await first.hub.store.database.query(
                "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()")
            #expect(try await first.request(.post, "/api/users/admin/projects", token: token, json: ["name": "late", "template": "hello"]).status == .created)
            try await TestHub.eventually("the second replica to list the project written while it was cut off") {
                try await second.request(.get, "/api/users/admin/projects", token: token).projectNames == ["late"]
            }
            try await TestHub.eventually("the change feed to be live again", timeout: .seconds(30)) { second.hub.store.changes.isLive }
        }
    }

    @Test func theProgressOfAStartOnOneReplicaReachesListenersOnTheOther() async throws {
        try await Self.withReplicas(live: true) { first, second in
            let token = try await first.adminToken()
            let project = "/api/users/admin/projects/web"
            #expect(try await first.request(.post, "/api/users/admin/projects", token: token, json: ["name": "web", "template": "hello"]).status == .created)
            let port = try #require(second.client.port)
            let (opened, signal) = AsyncStream.makeStream(of: Void.self)
            async let events = EnvironmentStreamTests.stream(
                "http://127.0.0.1:\(port)\(project)/events", token: token, opened: { signal.yield() }
            ) { text in text.contains(#""state":"active""#) }
            var iterator = opened.makeAsyncIterator()
            _ = await iterator.next()
            // The first replica does the work; the listener is on the second.
            #expect(try await first.request(.post, "\(project)/activate", token: token).status == .accepted)
            let text = try await events
            #expect(text.contains(#""state":"starting""#))
            #expect(text.contains("waiting for web to answer /health"))
            #expect(text.contains("web is ready"))
            let ids = text.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
            #expect(ids == ids.sorted() && Set(ids).count == ids.count)
        }
    }
}
