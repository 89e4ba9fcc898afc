import EnvHubCore
import EnvHubRuntime
import EnvHubStore
import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle

/// A project's environment: start, stop, follow its progress, read its output.
struct EnvironmentController {
    let access: ProjectAccess
    let lifecycle: EnvironmentLifecycle

    func addRoutes(to routes: HubRoutes) {
        routes.post("/api/users/{user}/projects/{project}/activate", activate)
        routes.post("/api/users/{user}/projects/{project}/deactivate", deactivate)
        routes.get("/api/users/{user}/projects/{project}/events", events)
        routes.get("/api/users/{user}/projects/{project}/logs", logs)
    }

    private func view(_ project: Project) -> ProjectJSON { ProjectJSON(project, idleTimeout: lifecycle.idleTimeout) }

    /// 202 when a start was queued; 200 when the environment already runs or starts.
    @Sendable func activate(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (project, started) = try await lifecycle.activate(try await access.project(context))
        return try .json(view(project), status: started ? .accepted : .ok)
    }

    /// 202 when a stop was queued; 200 when the environment was not running.
    @Sendable func deactivate(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (project, stopped) = try await lifecycle.deactivate(try await access.project(context))
        return try .json(view(project), status: stopped ? .accepted : .ok)
    }

    /// Server-sent events: the current state first, then every state change and progress
    /// step, each with an id and a time, until the client leaves.
    @Sendable func events(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        // Subscribe before reading the state, so that no change falls between the two.
        let stream = lifecycle.events.subscribe(project.id)
        let current = try await lifecycle.store.project(id: project.id) ?? project
        let first = lifecycle.events.snapshot(current)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                try await writer.write(try Self.encode(first))
                // A hub that shuts down ends the stream; clients reconnect to the next one.
                for await event in stream.cancelOnGracefulShutdown() {
                    try await writer.write(try Self.encode(event))
                }
                try await writer.finish(nil)
            })
    }

    static func encode(_ event: ProjectEvents.Event) throws -> ByteBuffer {
        if event.type == "heartbeat" { return ByteBuffer(string: ": keep-alive\n\n") }
        var buffer = ByteBuffer(string: "id: \(event.id)\nevent: \(event.type)\ndata: ")
        var data = try JSONWriter.encode(event)
        buffer.writeBuffer(&data)
        buffer.writeString("\n\n")
        return buffer
    }

    /// The last `tail` lines (100 by default, at most 10,000) of every component as text;
    /// with `follow=true` the answer stays open and new lines follow as they are written.
    @Sendable func logs(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        let query = request.uri.queryParameters
        let tail = try query.get("tail").map { raw -> Int in
            guard let value = Int(raw), (0...10_000).contains(value) else {
                throw EnvHubError.invalidField("tail", "tail must be a number from 0 to 10000")
            }
            return value
        } ?? 100
        let follow = query.get("follow") == "true"
        let runtime = lifecycle.runtime
        let environment = project.environment
        let lines = await runtime.lastLines(environment, count: tail)
        let text = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
        let headers: HTTPFields = [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache"]
        guard follow else { return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text))) }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: text))
            for await line in runtime.followLogs(environment).cancelOnGracefulShutdown() {
                try await writer.write(ByteBuffer(string: line + "\n"))
            }
            try await writer.finish(nil)
        })
    }
}
