import EnvHubCore
import EnvHubStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Talking to the agent in a project (docs/agent.md): a message goes to the exposed component
/// at its template's `messagePath` with the conversation so far, and the agent's streamed reply
/// comes back as server-sent events; both are stored. Owners and admins only, like every
/// project route.
struct AgentConversationController {
    let access: ProjectAccess
    let store: any ConversationStore
    let routes: RouteTable
    let replies: AgentReplies

    /// Earlier entries sent to the agent with each message.
    static let historyLimit = 100

    struct NewMessage: Decodable {
        let message: String
    }

    func addRoutes(to routes: HubRoutes) {
        routes.post("/api/users/{user}/projects/{project}/messages", post)
        routes.get("/api/users/{user}/projects/{project}/messages", list)
        routes.get("/api/users/{user}/projects/{project}/messages/stream", stream)
    }

    /// Stores the message and answers with the reply as server-sent events (`start`, `token`…,
    /// then `done` or `error`). The checks come first, as JSON errors: body, template, state.
    @Sendable func post(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        let body = try await JSON.decode(NewMessage.self, from: request, context: context)
        let text = try AgentMessage.validated(message: body.message)
        guard let route = try await routes.route(owner: project.owner, name: project.name) else {
            throw EnvHubError.notFound("no project \(project.owner)/\(project.name)")
        }
        guard let template = route.template, let messagePath = template.messagePath else {
            throw EnvHubError(code: "no_agent", status: 409,
                              message: "project \(project.owner)/\(project.name) has no agent: its template \(project.template) has no messagePath")
        }
        guard route.project.state == .active, let upstream = route.upstream else { return Self.notRunning(route.project) }
        let history = try await store.agentMessages(projectID: project.id, before: nil, limit: Self.historyLimit)
            .filter { $0.role == .user || $0.status == .complete }
            .map { AgentRequestJSON.Turn(role: $0.role.rawValue, content: $0.content) }
        let path = (template.keepPrefix ? "/u/\(project.owner)/\(project.name)" : "") + messagePath
        let author = try context.requireIdentity().user.name.rawValue
        let events = try await replies.begin(
            projectID: project.id, message: AgentMessage(id: 0, role: .user, content: text, author: author, createdAt: Date())
        ) { stored in
            AgentRelay(upstream: upstream, path: path, body: AgentRequestJSON(message: stored.content, history: history))
        }
        return Self.eventStream(events)
    }

    /// The conversation, a page at a time: `{"messages": [...], "hasMore": bool}`, oldest first.
    @Sendable func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        let query = request.uri.queryParameters
        let before = try query.get("before").map { raw -> Int64 in
            guard let value = Int64(raw), value > 0 else { throw EnvHubError.invalidField("before", "before must be a positive message id") }
            return value
        }
        let limit = try query.get("limit").map { raw -> Int in
            guard let value = Int(raw), (1...100).contains(value) else {
                throw EnvHubError.invalidField("limit", "limit must be a number from 1 to 100")
            }
            return value
        } ?? 50
        let page = try await store.agentMessages(projectID: project.id, before: before, limit: limit + 1)
        return try .json(AgentConversationJSON(messages: page.suffix(limit).map(AgentMessageJSON.init), hasMore: page.count > limit))
    }

    /// The reply in flight, for a client that reconnects: from the event after `Last-Event-ID`
    /// (from the first without it, or when it names no event of this reply); 204 when the
    /// project's agent is not answering, which tells browsers' EventSource to stop reconnecting.
    @Sendable func stream(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        guard let events = replies.follow(projectID: project.id, after: request.headers[.lastEventID]) else {
            return .noContent(headers: [.cacheControl: "no-cache"])
        }
        return Self.eventStream(events)
    }

    private static func eventStream(_ events: AsyncStream<AgentReply.Element>) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                // A write that fails (the client left) ends the loop; dropping the stream then
                // tells the reply this follower has gone.
                for await element in events {
                    try await writer.write(element.encoded)
                }
                try await writer.finish(nil)
            })
    }

    /// 409 with the project's state, like the gateway's answer for a stopped environment.
    static func notRunning(_ project: Project) -> Response {
        let message = "\(project.owner)/\(project.name) is \(project.state.rawValue), not active; activate it first"
        let body = StoppedPage.Body(error: .init(code: "environment_not_running", message: message), state: project.state,
                                    stateReason: project.stateReason.isEmpty ? nil : project.stateReason)
        return (try? Response.json(body, status: .conflict)) ?? EnvHubError.conflict(message).response()
    }
}

extension HTTPField.Name {
    /// The id of the last server-sent event a reconnecting client saw.
    static let lastEventID = Self("Last-Event-ID")!
}
