import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import Testing

@testable import EnvHubServer

/// What a checked token is remembered for, in the shared cache and by a connection.
@Suite struct SessionAuthorityTests {
    /// A connection's remembered identity (`Recalled`) lasts as long as the shared cache's:
    /// past `cacheLifetime` the token is checked again, and once it has been, the connection
    /// takes the fresh check rather than going on asking the store.
    @Test func aConnectionTakesTheFreshCheckOfItsToken() async throws {
        try await TestDatabase.sqlite.withStore { store in
            let sessions = SessionAuthority(store: store, feed: store.changes, lifetime: .seconds(3600), cacheLifetime: .seconds(60))
            try await sessions.loadSigningKeys()
            let now = Date()
            let alice = try await store.createUser(
                name: UserName(unchecked: "alice"), role: .user, passwordHash: "a", profile: Profile(), at: now)
            let (token, _) = try await sessions.issue(for: alice, now: now)
            #expect(await sessions.identity(for: token, now: now)?.user.id == alice.id)

            var recalled: SessionAuthority.Recalled?
            #expect(sessions.cachedIdentity(for: token, now: now, recalled: &recalled)?.user.id == alice.id)
            #expect(recalled != nil)

            let later = now.addingTimeInterval(61)
            #expect(sessions.cachedIdentity(for: token, now: later, recalled: &recalled) == nil, "checked too long ago")
            #expect(await sessions.identity(for: token, now: later)?.user.id == alice.id, "checked again")
            #expect(sessions.cachedIdentity(for: token, now: later, recalled: &recalled)?.user.id == alice.id)
            #expect(sessions.cachedIdentity(for: token, now: later, recalled: &recalled)?.user.id == alice.id)

            try await sessions.revoke(sessionID: try #require(await sessions.identity(for: token, now: later)).sessionID, now: later)
            #expect(sessions.cachedIdentity(for: token, now: later, recalled: &recalled) == nil, "revoked")
        }
    }
}
