import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird

/// A user's projects under `/api/users/{user}/projects`. Only the owner and admins see them;
/// anyone else gets 404, so that whether a user or project exists does not leak.
struct ProjectController {
    let store: any HubStore
    let templates: TemplateCatalog
    let listCache: ProjectListCache
    let lifecycle: EnvironmentLifecycle
    var access: ProjectAccess { ProjectAccess(store: store, activity: lifecycle.activity) }

    struct NewProject: Decodable {
        let name: String
        let template: String
        let description: String?
        let autoStart: Bool?
    }

    struct ProjectChange: Decodable {
        let name: String?
        let template: String?
        let description: String?
        let autoStart: Bool?
    }

    struct ProjectList: Encodable {
        let projects: [ProjectJSON]
    }

    private func view(_ project: Project) -> ProjectJSON { ProjectJSON(project, idleTimeout: lifecycle.idleTimeout) }

    func addRoutes(to routes: HubRoutes) {
        routes.get("/api/users/{user}/projects", list)
        routes.post("/api/users/{user}/projects", create)
        routes.get("/api/users/{user}/projects/{project}", show)
        routes.put("/api/users/{user}/projects/{project}", replace)
        routes.patch("/api/users/{user}/projects/{project}", update)
        routes.delete("/api/users/{user}/projects/{project}", delete)
    }

    @Sendable func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let owner = try await access.owner(context)
        let (cached, generation) = listCache.lookup(ownerID: owner.id)
        if let cached { return .json(encoded: cached) }
        let projects = try await store.projects(ownedBy: owner.name).map(view)
        let body = try JSONWriter.encode(ProjectList(projects: projects))
        listCache.store(body, ownerID: owner.id, generation: generation)
        return .json(encoded: body)
    }

    @Sendable func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        let owner = try await access.owner(context)
        let body = try await JSON.decode(NewProject.self, from: request, context: context)
        let name = try ProjectName(validating: body.name, field: "name")
        try requireTemplate(body.template)
        let description = body.description ?? ""
        try Project.validate(description: description)
        let now = Date()
        let project = try await store.createProject(Project(
            id: UUID().uuidString.lowercased(), ownerID: owner.id, owner: owner.name, name: name,
            template: body.template, description: description, state: .inactive, autoStart: body.autoStart ?? true,
            createdAt: now, updatedAt: now))
        return try .json(view(project), status: .created)
    }

    @Sendable func show(_ request: Request, context: HubRequestContext) async throws -> Response {
        try .json(view(try await access.project(context)))
    }

    /// PUT replaces every editable field: name and template are required, a missing description
    /// is emptied, a missing autoStart is on.
    @Sendable func replace(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        let body = try await JSON.decode(NewProject.self, from: request, context: context)
        return try await save(
            project, name: body.name, template: body.template, description: body.description ?? "", autoStart: body.autoStart ?? true)
    }

    /// PATCH changes only the fields present.
    @Sendable func update(_ request: Request, context: HubRequestContext) async throws -> Response {
        let project = try await access.project(context)
        let body = try await JSON.decode(ProjectChange.self, from: request, context: context)
        return try await save(
            project, name: body.name ?? project.name.rawValue, template: body.template ?? project.template,
            description: body.description ?? project.description, autoStart: body.autoStart ?? project.autoStart)
    }

    /// 204 when the project is gone; 202 with state `deleting` when its environment is being stopped first.
    @Sendable func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (project, done) = try await lifecycle.delete(try await access.project(context))
        return done ? .noContent() : try .json(view(project), status: .accepted)
    }

    private func save(
        _ project: Project, name rawName: String, template: String, description: String, autoStart: Bool
    ) async throws -> Response {
        let name = try ProjectName(validating: rawName, field: "name")
        try requireTemplate(template)
        try Project.validate(description: description)
        var changed = project
        changed.name = name
        changed.template = template
        changed.description = description
        changed.autoStart = autoStart
        // The store refuses renames and template changes of a running environment.
        changed.updatedAt = Date()
        guard let saved = try await store.updateProject(changed) else {
            throw EnvHubError.notFound("no project \(project.owner)/\(project.name)")
        }
        return try .json(view(saved))
    }

    private func requireTemplate(_ name: String) throws(EnvHubError) {
        guard templates.template(named: name) != nil else {
            let known = templates.templates.map(\.name).joined(separator: ", ")
            throw .invalidField("template", "template \(name) does not exist (available: \(known))")
        }
    }
}
