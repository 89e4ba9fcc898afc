import EnvHubCore
import EnvHubStore
import Foundation
import EnvHubTestSupport
import Testing

struct Abort: Error {}

/// One suite, run against SQLite and PostgreSQL alike.
@Suite struct StoreTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let alice = UserName(unchecked: "alice")
    static let bob = UserName(unchecked: "bob")

    @Test(arguments: TestDatabase.allCases)
    func migrationsApplyOnceAndAreRecorded(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            #expect(try await store.migrate().isEmpty)
            let versions = try await store.database.query("SELECT version FROM schema_migrations").map { try $0.int("version") }
            #expect(versions.sorted() == Migrations.steps.map { Int64($0.version) })
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func usersAreCreatedFoundUpdatedAndDeleted(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let created = try await store.createUser(
                name: Self.alice, role: .admin, passwordHash: "hash-a",
                profile: Profile(displayName: "Alice", bio: "hi", email: "a@example.org"), at: Self.now)
            #expect(try await store.user(named: Self.alice) == created)
            #expect(try await store.credentials(of: Self.alice)?.passwordHash == "hash-a")
            await #expect(throws: EnvHubError.conflict("user alice already exists")) {
                _ = try await store.createUser(name: Self.alice, role: .user, passwordHash: "x", profile: Profile(), at: Self.now)
            }
            _ = try await store.createUser(name: Self.bob, role: .user, passwordHash: "hash-b", profile: Profile(), at: Self.now)
            #expect(try await store.users().map(\.name) == [Self.alice, Self.bob])
            #expect(try await store.countUsers() == 2)

            let later = Self.now.addingTimeInterval(60)
            let updated = try await store.updateUser(
                named: Self.bob, profile: Profile(displayName: "Bob", bio: "", email: nil), role: .admin, at: later)
            #expect(updated?.role == .admin)
            #expect(updated?.profile.displayName == "Bob")
            #expect(updated?.updatedAt == later)
            #expect(try await store.updateUser(named: UserName(unchecked: "nobody"), profile: Profile(), role: .user, at: later) == nil)

            #expect(try await store.deleteUser(named: Self.bob))
            #expect(!(try await store.deleteUser(named: Self.bob)))
            #expect(try await store.user(named: Self.bob) == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func passwordChangeRevokesOtherSessionsOnly(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let user = try await store.createUser(name: Self.alice, role: .user, passwordHash: "old", profile: Profile(), at: Self.now)
            let expires = Self.now.addingTimeInterval(3600)
            for id in ["s1", "s2", "s3"] {
                try await store.createSession(Session(id: id, userID: user.id, createdAt: Self.now, expiresAt: expires))
            }
            #expect(try await store.changePassword(of: Self.alice, passwordHash: "new", keeping: "s2", at: Self.now))
            #expect(try await store.session(id: "s1")?.session.isValid(at: Self.now) == false)
            #expect(try await store.session(id: "s2")?.session.isValid(at: Self.now) == true)
            #expect(try await store.session(id: "s3")?.session.revokedAt == Self.now)
            #expect(try await store.credentials(of: Self.alice)?.passwordHash == "new")
            #expect(!(try await store.changePassword(of: Self.bob, passwordHash: "x", keeping: nil, at: Self.now)))

            try await store.revokeSession(id: "s2", at: Self.now)
            #expect(try await store.session(id: "s2")?.session.isValid(at: Self.now) == false)
            #expect(try await store.session(id: "missing") == nil)
            #expect(try await store.deleteSessions(expiredBefore: expires.addingTimeInterval(1)) == 3)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func loginFailuresAreCountedInTheirWindow(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let here = "203.0.113.7", there = "198.51.100.2"
            for minute in 0..<4 {
                try await store.recordLoginFailure(username: "alice", client: here, at: Self.now.addingTimeInterval(Double(minute) * 60))
            }
            try await store.recordLoginFailure(username: "alice", client: there, at: Self.now.addingTimeInterval(150))
            try await store.recordLoginFailure(username: "bob", client: here, at: Self.now)
            let recent = try await store.loginFailures(username: "alice", client: here, since: Self.now.addingTimeInterval(90))
            #expect(recent == [Self.now.addingTimeInterval(120), Self.now.addingTimeInterval(180)])
            try await store.clearLoginFailures(username: "alice", client: here)
            #expect(try await store.loginFailures(username: "alice", client: here, since: Self.now).isEmpty)
            #expect(try await store.loginFailures(username: "alice", client: there, since: Self.now).count == 1)
            #expect(try await store.loginFailures(username: "bob", client: here, since: Self.now).count == 1)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func projectsAreUniquePerOwnerAndGoWithTheirOwner(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let alice = try await store.createUser(name: Self.alice, role: .user, passwordHash: "a", profile: Profile(), at: Self.now)
            let bob = try await store.createUser(name: Self.bob, role: .user, passwordHash: "b", profile: Profile(), at: Self.now)
            func project(_ owner: User, _ name: String, state: EnvironmentState = .inactive) -> Project {
                Project(id: UUID().uuidString, ownerID: owner.id, owner: owner.name, name: ProjectName(unchecked: name),
                        template: "hello", description: "d", state: state, createdAt: Self.now, updatedAt: Self.now)
            }
            let first = try await store.createProject(project(alice, "web"))
            _ = try await store.createProject(project(alice, "api"))
            _ = try await store.createProject(project(bob, "web"))
            await #expect(throws: EnvHubError.conflict("project alice/web already exists")) {
                _ = try await store.createProject(project(alice, "web"))
            }
            #expect(try await store.projects(ownedBy: Self.alice).map(\.name.rawValue) == ["api", "web"])
            #expect(try await store.allProjects().count == 3)
            #expect(try await store.project(owner: Self.alice, name: ProjectName(unchecked: "web")) == first)

            var renamed = first
            renamed.name = ProjectName(unchecked: "site")
            renamed.updatedAt = Self.now.addingTimeInterval(5)
            #expect(try await store.updateProject(renamed) == renamed)
            #expect(try await store.project(owner: Self.alice, name: ProjectName(unchecked: "site")) == renamed)
            var clash = renamed
            clash.name = ProjectName(unchecked: "api")
            await #expect(throws: EnvHubError.conflict("project alice/api already exists")) { _ = try await store.updateProject(clash) }

            // A running environment keeps its name and template; its description may change.
            var running = try await store.createProject(project(bob, "live", state: .active))
            running.description = "still editable"
            #expect(try await store.updateProject(running)?.description == "still editable")
            running.name = ProjectName(unchecked: "moved")
            await #expect(throws: EnvHubError.self) { _ = try await store.updateProject(running) }
            #expect(try await store.project(owner: Self.bob, name: ProjectName(unchecked: "live"))?.description == "still editable")
            #expect(try await store.countProjectsByState() == [.inactive: 3, .active: 1])

            #expect(try await store.deleteUser(named: Self.alice))
            #expect(try await store.allProjects().map(\.owner) == [Self.bob, Self.bob])
            #expect(try await store.deleteProject(id: first.id) == false)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func theFirstWrittenSettingWins(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            #expect(try await store.setting("key") == nil)
            #expect(try await store.settingInsertingIfAbsent("key", value: "first") == "first")
            #expect(try await store.settingInsertingIfAbsent("key", value: "second") == "first")
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func aFailedTransactionLeavesNothingBehind(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            await #expect(throws: Abort.self) {
                try await store.database.transaction { sql in
                    try await sql.query("INSERT INTO settings (key, value) VALUES ($1, $2)", [.text("k"), .text("v")])
                    throw Abort()
                }
            }
            #expect(try await store.setting("k") == nil)
        }
    }

    @Test(arguments: TestDatabase.allCases)
    func concurrentWritesAllLand(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let user = try await store.createUser(name: Self.alice, role: .user, passwordHash: "a", profile: Profile(), at: Self.now)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        _ = try await store.createProject(Project(
                            id: UUID().uuidString, ownerID: user.id, owner: user.name, name: ProjectName(unchecked: "p\(index)"),
                            template: "hello", description: "", state: .inactive, createdAt: Self.now, updatedAt: Self.now))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.projects(ownedBy: Self.alice).count == 40)
        }
    }
}

@Suite struct SweepTests {
    @Test(arguments: TestDatabase.allCases)
    func oldLoginFailuresAreForgotten(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let now = StoreTests.now
            try await store.recordLoginFailure(username: "a", client: "192.0.2.1", at: now.addingTimeInterval(-600))
            try await store.recordLoginFailure(username: "a", client: "192.0.2.1", at: now)
            #expect(try await store.deleteLoginFailures(before: now.addingTimeInterval(-300)) == 1)
            #expect(try await store.loginFailures(username: "a", client: "192.0.2.1", since: .distantPast) == [now])
        }
    }
}
