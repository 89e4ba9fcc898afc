import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import Testing

/// Projects' conversations with their agents, on SQLite and PostgreSQL alike.
@Suite struct AgentConversationStoreTests {
    static let now = StoreTests.now

    func project(_ name: String, of user: User, in store: SQLStore) async throws -> Project {
        try await store.createProject(Project(
            id: UUID().uuidString, ownerID: user.id, owner: user.name, name: ProjectName(unchecked: name), template: "agent",
            description: "", state: .inactive, createdAt: Self.now, updatedAt: Self.now))
    }

    @Test(arguments: TestDatabase.allCases)
    func entriesAreNumberedPerProjectAndPaged(_ database: TestDatabase) async throws {
        try await database.withStore { store async throws in
            let alice = try await store.createUser(name: StoreTests.alice, role: .user, passwordHash: "a", profile: Profile(), at: Self.now)
            let bot = try await project("bot", of: alice, in: store)
            let other = try await project("other", of: alice, in: store)
            let question = try #require(try await store.appendAgentMessage(
                AgentMessage(id: 0, role: .user, content: "help", author: "alice", createdAt: Self.now), projectID: bot.id))
            #expect(question.id == 1)
            let answer = try #require(try await store.appendAgentMessage(
                AgentMessage(id: 0, role: .assistant, content: "partial", status: .failed, error: "overloaded", replyTo: 1,
                             createdAt: Self.now.addingTimeInterval(1)),
                projectID: bot.id))
            #expect(answer.id == 2)
            #expect(try await store.appendAgentMessage(
                AgentMessage(id: 0, role: .user, content: "elsewhere", createdAt: Self.now), projectID: other.id)?.id == 1)
            #expect(try await store.appendAgentMessage(
                AgentMessage(id: 0, role: .user, content: "lost", createdAt: Self.now), projectID: "no-such-project") == nil)

            #expect(try await store.agentMessages(projectID: bot.id, before: nil, limit: 10) == [question, answer])
            #expect(try await store.agentMessages(projectID: bot.id, before: nil, limit: 1) == [answer])
            #expect(try await store.agentMessages(projectID: bot.id, before: 2, limit: 10) == [question])

            // Taking turns at the next id: every message lands under its own.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        _ = try await store.appendAgentMessage(
                            AgentMessage(id: 0, role: .user, content: "m\(index)", createdAt: Self.now), projectID: other.id)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.agentMessages(projectID: other.id, before: nil, limit: 100).map(\.id) == Array(1...11))

            // The conversation goes with its project.
            #expect(try await store.deleteProject(id: bot.id))
            #expect(try await store.agentMessages(projectID: bot.id, before: nil, limit: 10).isEmpty)
            let rows = try await store.database.query("SELECT COUNT(*) AS n FROM agent_messages WHERE project_id = $1", [.text(bot.id)])
            #expect(try rows.first?.int("n") == 0)
        }
    }
}
