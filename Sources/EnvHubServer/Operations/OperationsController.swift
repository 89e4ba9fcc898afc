import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird

/// Probes, status, figures and the API contract.
struct OperationsController {
    let store: SQLStore
    let metrics: HubMetrics
    let openAPIDocument: ByteBuffer
    let runtimeKind: String
    let runtimeDescription: String
    let agentReplies: AgentReplies
    let chat: ChatHub
    let activity: ActivityTracker
    let openSignup: Bool
    let adminAppAccess: Bool
    let appOrigins: AppOrigins?

    struct Health: Encodable { let status: String }

    struct Status: Encodable {
        struct Store: Encodable {
            let kind: String
            let healthy: Bool
            let schemaVersion: Int
        }
        struct Runtime: Encodable {
            let kind: String
            let detail: String
        }
        let version: String
        let store: Store
        let runtime: Runtime
        let openSignup: Bool
        /// Admins may open other users' apps (`AppConfig.adminAppAccess`).
        let adminAppAccess: Bool
        /// Where users' apps are served, when not on the hub's origin (`AppOrigins.appsURL`).
        let appsURL: String?
    }

    struct Stats: Encodable {
        struct Projects: Encodable {
            let total: Int
            let byState: [String: Int]
        }
        let users: Int
        let projects: Projects
        /// Agents' replies being relayed by this hub.
        let activeAgentStreams: Int
        let rooms: Int
        let messages: Int
        let messagesLast24h: Int
        /// Users with a chat socket open, on any replica.
        let usersOnline: Int
    }

    func addRoutes(to routes: HubRoutes) {
        routes.get("/healthz") { _, _ in try .json(Health(status: "ok")) }
        routes.get("/readyz") { _, context in
            do {
                try await store.ping()
            } catch {
                context.logger.warning("readiness check failed", metadata: ["error": "\(error)"])
                throw EnvHubError.unavailable("the store does not answer")
            }
            return try .json(Health(status: "ready"))
        }
        routes.get("/api/status", status)
        routes.get("/api/stats", stats)
        routes.get("/metrics") { _, _ in
            let text = try await metrics.render(store: store, now: .init(
                gatewayExchanges: activity.openExchanges, agentReplies: agentReplies.count,
                chatUsersOnline: chat.usersOnline))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        routes.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: openAPIDocument))
        }
    }

    @Sendable func status(_ request: Request, context: HubRequestContext) async throws -> Response {
        let healthy = (try? await store.ping()) != nil
        return try .json(Status(
            version: EnvHubVersion.current,
            store: .init(kind: store.kind.rawValue, healthy: healthy, schemaVersion: Migrations.latestVersion),
            runtime: .init(kind: runtimeKind, detail: runtimeDescription), openSignup: openSignup,
            adminAppAccess: adminAppAccess, appsURL: appOrigins?.appsURL))
    }

    @Sendable func stats(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireIdentity()
        let counts = try await store.countProjectsByState()
        var byState: [String: Int] = [:]
        for state in EnvironmentState.allCases { byState[state.rawValue] = counts[state] ?? 0 }
        let chatCounts = try await store.chatCounts(since: Date().addingTimeInterval(-24 * 3600))
        return try .json(Stats(
            users: try await store.countUsers(),
            projects: .init(total: counts.values.reduce(0, +), byState: byState),
            activeAgentStreams: agentReplies.count,
            rooms: chatCounts.rooms, messages: chatCounts.messages, messagesLast24h: chatCounts.recentMessages,
            usersOnline: chat.usersOnline))
    }
}

/// The version this build reports.
public enum EnvHubVersion {
    public static let current = "0.1.0"
}
