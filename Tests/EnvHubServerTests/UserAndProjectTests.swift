import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct UserTests {
    @Test func emailIsShownOnlyToTheUserAndAdmins() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            let bob = try await hub.createUser("bob", adminToken: admin)
            let patch = try await hub.request(
                .patch, "/api/users/alice", token: alice, json: ["displayName": "Alice A.", "bio": "Hi!", "email": "alice@example.org"])
            #expect(patch.status == .ok)
            #expect(patch.object["email"] as? String == "alice@example.org")
            let seenByBob = try await hub.request(.get, "/api/users/alice", token: bob)
            #expect(seenByBob.object["displayName"] as? String == "Alice A.")
            #expect(seenByBob.object["bio"] as? String == "Hi!")
            #expect(seenByBob.object["email"] == nil)
            let seenByAdmin = try await hub.request(.get, "/api/users/alice", token: admin)
            #expect(seenByAdmin.object["email"] as? String == "alice@example.org")
            let cleared = try await hub.request(.patch, "/api/users/alice", token: alice, json: ["email": NSNull()])
            #expect(cleared.object["email"] == nil)
            #expect(cleared.object["bio"] as? String == "Hi!")
        }
    }

    @Test func profileChangesAreValidatedAndRolesAreForAdmins() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            let badEmail = try await hub.request(.patch, "/api/users/alice", token: alice, json: ["email": "nope"])
            #expect(badEmail.status == .badRequest)
            #expect(badEmail.errorCode == "invalid_field")
            let long = try await hub.request(.patch, "/api/users/alice", token: alice, json: ["bio": String(repeating: "b", count: 2_001)])
            #expect(long.status == .badRequest)
            let selfPromotion = try await hub.request(.patch, "/api/users/alice", token: alice, json: ["admin": true])
            #expect(selfPromotion.status == .forbidden)
            let promoted = try await hub.request(.patch, "/api/users/alice", token: admin, json: ["admin": true])
            #expect(promoted.object["role"] as? String == "admin")
            // The new role applies to alice's existing session at once.
            #expect(try await hub.request(.get, "/api/users", token: alice).status == .ok)
        }
    }

    /// U+0000 cannot be stored as text (SQLite cut the email there, PostgreSQL refuses it):
    /// refused with a 400, and nothing of the request is kept.
    @Test func textWithNULIsRefusedAndNothingIsStored() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            _ = try await hub.request(.patch, "/api/users/alice", token: alice, json: ["email": "alice@example.org"])
            let nul = try await hub.request(
                .patch, "/api/users/alice", token: alice, json: ["bio": "new", "email": "B\u{0}@lR.example"])
            #expect(nul.status == .badRequest)
            #expect(nul.errorMessage == "no text may contain the character U+0000 (NUL)")
            let kept = try await hub.request(.get, "/api/users/alice", token: alice)
            #expect(kept.object["email"] as? String == "alice@example.org")
            #expect(kept.object["bio"] as? String == "")
            // An escaped backslash followed by "u0000" is text like any other.
            let text = try await hub.request(.patch, "/api/users/alice", token: alice, rawBody: #"{"bio": "C:\\u0000"}"#)
            #expect(text.status == .ok)
            #expect(text.object["bio"] as? String == #"C:\u0000"#)
        }
    }

    @Test func adminsManageAccountsButTheLastAdminStays() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            _ = try await hub.createUser("alice", adminToken: admin)
            let duplicate = try await hub.request(.post, "/api/users", token: admin, json: ["username": "alice", "password": "password-123"])
            #expect(duplicate.status == .conflict)
            let list = try await hub.request(.get, "/api/users", token: admin)
            #expect((list.object["users"] as? [[String: Any]])?.compactMap { $0["username"] as? String } == ["admin", "alice"])
            let demote = try await hub.request(.patch, "/api/users/admin", token: admin, json: ["admin": false])
            #expect(demote.status == .conflict)
            let deleteSelf = try await hub.request(.delete, "/api/users/admin", token: admin)
            #expect(deleteSelf.status == .conflict)
            #expect(try await hub.request(.delete, "/api/users/alice", token: admin).status == .noContent)
            #expect(try await hub.request(.get, "/api/users/alice", token: admin).status == .notFound)
            #expect(try await hub.request(.delete, "/api/users/alice", token: admin).status == .notFound)
        }
    }

    @Test func deletingAUserSignsThemOutAndRemovesTheirProjects() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            #expect(try await hub.request(.post, "/api/users/alice/projects", token: alice, json: ["name": "web", "template": "hello"]).status == .created)
            #expect(try await hub.request(.delete, "/api/users/alice", token: admin).status == .noContent)
            #expect(try await hub.request(.get, "/api/auth/me", token: alice).status == .unauthorized)
            _ = try await hub.createUser("alice", adminToken: admin)
            let projects = try await hub.request(.get, "/api/users/alice/projects", token: admin)
            #expect((projects.object["projects"] as? [Any])?.isEmpty == true)
        }
    }
}

@Suite struct ProjectTests {
    @Test(arguments: TestDatabase.allCases)
    func ownersCreateReadUpdateAndDeleteTheirProjects(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            let created = try await hub.request(
                .post, "/api/users/alice/projects", token: alice, json: ["name": "web", "template": "hello", "description": "My site"])
            #expect(created.status == .created)
            #expect(created.object["state"] as? String == "inactive")
            #expect(created.object["owner"] as? String == "alice")
            #expect(created.object["createdAt"] as? String != nil)

            let patched = try await hub.request(.patch, "/api/users/alice/projects/web", token: alice, json: ["description": "Changed"])
            #expect(patched.object["description"] as? String == "Changed")
            #expect(patched.object["template"] as? String == "hello")

            let replaced = try await hub.request(
                .put, "/api/users/alice/projects/web", token: alice, json: ["name": "site", "template": "athlete"])
            #expect(replaced.status == .ok)
            #expect(replaced.object["name"] as? String == "site")
            #expect(replaced.object["description"] as? String == "")
            #expect(try await hub.request(.get, "/api/users/alice/projects/web", token: alice).status == .notFound)
            let fetched = try await hub.request(.get, "/api/users/alice/projects/site", token: alice)
            #expect(fetched.object["template"] as? String == "athlete")

            let incomplete = try await hub.request(.put, "/api/users/alice/projects/site", token: alice, json: ["name": "site"])
            #expect(incomplete.status == .badRequest)
            #expect(incomplete.errorMessage == "template is required")

            #expect(try await hub.request(.delete, "/api/users/alice/projects/site", token: alice).status == .noContent)
            let list = try await hub.request(.get, "/api/users/alice/projects", token: alice)
            #expect((list.object["projects"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func anotherUsersProjectsAreNotFoundButAdminsSeeAll() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            let bob = try await hub.createUser("bob", adminToken: admin)
            _ = try await hub.request(.post, "/api/users/alice/projects", token: alice, json: ["name": "web", "template": "hello"])
            let existing = try await hub.request(.get, "/api/users/alice/projects/web", token: bob)
            let missing = try await hub.request(.get, "/api/users/alice/projects/nothing", token: bob)
            #expect(existing.status == .notFound)
            #expect(missing.status == .notFound)
            #expect(try await hub.request(.get, "/api/users/alice/projects", token: bob).status == .notFound)
            #expect(try await hub.request(.get, "/api/users/ghost/projects", token: bob).status == .notFound)
            #expect(try await hub.request(.patch, "/api/users/alice/projects/web", token: bob, json: ["description": "x"]).status == .notFound)
            #expect(try await hub.request(.delete, "/api/users/alice/projects/web", token: bob).status == .notFound)
            #expect(try await hub.request(.get, "/api/users/alice/projects/web", token: admin).status == .ok)
            #expect(try await hub.request(.get, "/api/users/ghost/projects", token: admin).status == .notFound)
        }
    }

    @Test func badProjectsAreRefusedNamingTheField() async throws {
        try await TestHub.run { hub in
            let admin = try await hub.adminToken()
            let alice = try await hub.createUser("alice", adminToken: admin)
            func create(_ body: [String: Any]) async throws -> TestResponse {
                try await hub.request(.post, "/api/users/alice/projects", token: alice, json: body)
            }
            let longName = try await create(["name": String(repeating: "a", count: 41), "template": "hello"])
            #expect(longName.errorMessage == "name must be at most 40 characters")
            let noTemplate = try await create(["name": "web", "template": "nope"])
            #expect(noTemplate.status == .badRequest)
            #expect(noTemplate.errorMessage?.hasPrefix("template nope does not exist") == true)
            let longDescription = try await create(["name": "web", "template": "hello", "description": String(repeating: "d", count: 2_001)])
            #expect(longDescription.errorMessage == "description must be at most 2000 characters")
            let wrongType = try await create(["name": 7, "template": "hello"])
            #expect(wrongType.errorMessage == "name must be a string")
            #expect(try await create(["name": "web", "template": "hello"]).status == .created)
            let duplicate = try await create(["name": "web", "template": "desktop"])
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "conflict")
            let list = try await hub.request(.get, "/api/users/alice/projects", token: alice)
            #expect((list.object["projects"] as? [[String: Any]])?.map { $0["template"] as? String } == ["hello"])
        }
    }
}

@Suite struct ProjectListFreshnessTests {
    /// Lists are served from memory; every write must show in the very next list.
    @Test(arguments: TestDatabase.allCases)
    func everyWriteShowsInTheNextList(_ database: TestDatabase) async throws {
        try await TestHub.run(on: database) { hub in
            let token = try await hub.adminToken()
            let list = { try await hub.request(.get, "/api/users/admin/projects", token: token) }
            #expect(try await list().projectNames == [])
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "one", "template": "hello"])
            #expect(try await list().projectNames == ["one"])
            _ = try await hub.request(.patch, "/api/users/admin/projects/one", token: token, json: ["description": "changed"])
            let described = try await list().object["projects"] as? [[String: Any]]
            #expect(described?.first?["description"] as? String == "changed")
            _ = try await hub.request(.patch, "/api/users/admin/projects/one", token: token, json: ["name": "two"])
            #expect(try await list().projectNames == ["two"])
            _ = try await hub.request(.delete, "/api/users/admin/projects/two", token: token)
            #expect(try await list().projectNames == [])
        }
    }
}
