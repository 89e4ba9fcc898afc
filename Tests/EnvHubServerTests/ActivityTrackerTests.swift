import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import NIOEmbedded
import Testing

@testable import EnvHubServer

/// How gateway traffic becomes a project's `last_activity`: written in batches, one write per
/// project per flush, with an open exchange counting as use for as long as it stays open.
@Suite struct ActivityTrackerTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A store with alice's project `web`, never used yet.
    static func withProject(_ body: @Sendable (SQLStore, Project) async throws -> Void) async throws {
        try await TestDatabase.sqlite.withStore { store in
            let alice = try await store.createUser(
                name: UserName(unchecked: "alice"), role: .user, passwordHash: "a", profile: Profile(), at: now)
            let web = try await store.createProject(Project(
                id: UUID().uuidString, ownerID: alice.id, owner: alice.name, name: ProjectName(unchecked: "web"),
                template: "hello", description: "", state: .active, createdAt: now, updatedAt: now))
            try await body(store, web)
        }
    }

    static func lastActivity(of project: Project, in store: SQLStore) async throws -> Date? {
        try await store.project(id: project.id)?.lastActivity
    }

    /// Waits until the clock has moved on from `date` by more than the store's millisecond.
    static func waitForTheClock(after date: Date) async throws {
        try await waitFor("the clock to move on") { Date() > date.addingTimeInterval(0.002) ? true : nil }
    }

    @Test func anExchangeIsUseFromItsOpeningToItsEnd() async throws {
        try await Self.withProject { store, web in
            let tracker = ActivityTracker(openRefresh: 3600)
            try await tracker.flush(to: store)
            #expect(try await Self.lastActivity(of: web, in: store) == nil, "nothing used, nothing written")

            let opened = Date()
            tracker.common.opened(web.id)
            #expect(tracker.openExchanges == 1)
            try await tracker.flush(to: store)
            let inUse = try #require(try await Self.lastActivity(of: web, in: store))
            #expect(inUse >= opened.addingTimeInterval(-0.001))
            try await tracker.flush(to: store)
            #expect(try await Self.lastActivity(of: web, in: store) == inUse, "written again only after openRefresh")

            try await Self.waitForTheClock(after: inUse)
            let closed = Date()
            tracker.common.closed(web.id)
            #expect(tracker.openExchanges == 0)
            try await tracker.flush(to: store)
            let ended = try #require(try await Self.lastActivity(of: web, in: store))
            #expect(ended >= closed.addingTimeInterval(-0.001), "the exchange's end is the last use")
            try await tracker.flush(to: store)
            #expect(try await Self.lastActivity(of: web, in: store) == ended, "no longer in use, nothing more written")
        }
    }

    @Test func anExchangeLeftOpenIsWrittenAsUseEveryRefresh() async throws {
        try await Self.withProject { store, web in
            let tracker = ActivityTracker(openRefresh: 0)
            tracker.common.opened(web.id)
            tracker.common.opened(web.id)
            try await tracker.flush(to: store)
            let first = try #require(try await Self.lastActivity(of: web, in: store))
            try await Self.waitForTheClock(after: first)
            tracker.common.closed(web.id)  // one of the two: still in use
            try await tracker.flush(to: store)
            let second = try #require(try await Self.lastActivity(of: web, in: store))
            #expect(second > first)
            try await Self.waitForTheClock(after: second)
            try await tracker.flush(to: store)
            #expect(try #require(try await Self.lastActivity(of: web, in: store)) > second)
            #expect(tracker.openExchanges == 1)
        }
    }

    /// The gateway records on its event loops' shards: use on any of them counts, and a
    /// project stays in use while an exchange is open on one, whatever the others do.
    @Test func everyEventLoopsUseIsWritten() async throws {
        try await Self.withProject { store, web in
            // Thread-safe testing loops (only their identities matter here): the test's awaits
            // move it between threads, which an EmbeddedEventLoop reports as misuse, and later
            // NIO versions will trap on.
            let loops = [NIOAsyncTestingEventLoop(), NIOAsyncTestingEventLoop()]
            let tracker = ActivityTracker(openRefresh: 3600)
            let first = tracker.shard(for: loops[0]), second = tracker.shard(for: loops[1])
            #expect(first !== second)
            #expect(tracker.shard(for: loops[0]) === first, "one shard per loop")

            first.opened(web.id)
            second.opened(web.id)
            #expect(tracker.openExchanges == 2)
            try await tracker.flush(to: store)
            let inUse = try #require(try await Self.lastActivity(of: web, in: store))

            try await Self.waitForTheClock(after: inUse)
            let closed = Date()
            second.closed(web.id)
            #expect(tracker.openExchanges == 1, "still open on the first loop")
            try await tracker.flush(to: store)
            let ended = try #require(try await Self.lastActivity(of: web, in: store))
            #expect(ended >= closed.addingTimeInterval(-0.001), "the second loop's exchange ended: use then")

            first.closed(web.id)
            #expect(tracker.openExchanges == 0)
        }
    }
}
