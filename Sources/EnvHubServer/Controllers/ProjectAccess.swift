import EnvHubCore
import EnvHubStore
import Hummingbird

/// Finds the user and project a path names, if the caller may see them: the owner and admins
/// may; anyone else gets 404, so that whether a user or project exists does not leak. Every
/// project looked at this way counts as used, for the idle culler.
struct ProjectAccess {
    let store: any HubStore
    let activity: ActivityTracker

    /// The user named in the path, if the caller may see their projects.
    func owner(_ context: HubRequestContext) async throws -> User {
        let identity = try context.requireIdentity()
        let raw = try context.pathParameter("user")
        if let name = UserName(rawValue: raw), identity.user.isAdmin || identity.user.name == name,
           let user = name == identity.user.name ? identity.user : try await store.user(named: name) {
            return user
        }
        throw EnvHubError.notFound("no user \(raw)")
    }

    func project(_ context: HubRequestContext) async throws -> Project {
        let owner = try await owner(context)
        let raw = try context.pathParameter("project")
        guard let name = ProjectName(rawValue: raw), let project = try await store.project(owner: owner.name, name: name) else {
            throw EnvHubError.notFound("no project \(owner.name)/\(raw)")
        }
        activity.common.touch(project.id)
        return project
    }
}
