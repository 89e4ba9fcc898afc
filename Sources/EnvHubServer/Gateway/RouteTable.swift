import EnvHubCore
import EnvHubRuntime
import EnvHubStore
import Foundation
import NIOConcurrencyHelpers

/// Where `/u/{user}/{project}/` goes, read from the store and kept in memory until the store
/// says the owner's projects changed (on any replica, through the change feed). There is no
/// separate table of routes that could be lost: a restarted hub reads the same store, so its
/// first request to an active environment already finds it. Recorded use (`.activity`) does
/// not count as a change: a route's `project.lastActivity` may be older than the store's.
final class RouteTable: Sendable {
    /// A class, not a struct: a request's look-up then copies one reference, not every
    /// string of a project and its template.
    final class Route: Sendable {
        let project: Project
        /// Where the exposed component answers, while the environment is active.
        let upstream: Endpoint?
        /// Nil if the project's template has gone from the catalogue.
        let template: Template?
        /// What the gateway reads of the template for every request, apart (a read of
        /// `template` copies each of its strings); nil when `template` is.
        let forwarding: (keepPrefix: Bool, entryPath: String?)?

        init(project: Project, upstream: Endpoint?, template: Template?) {
            self.project = project
            self.upstream = upstream
            self.template = template
            self.forwarding = template.map { ($0.keepPrefix, $0.entryPath) }
        }
    }

    static let maxEntries = 10_000
    private let store: any HubStore
    private let templates: TemplateCatalog
    private let routes = NIOLockedValueBox([String: Route]())
    private let generation = CacheGeneration()

    init(store: any HubStore, templates: TemplateCatalog) {
        self.store = store
        self.templates = templates
        store.changes.subscribe { [routes, generation] change in
            routes.withLockedValue { routes in
                switch change {
                case .projects(let ownerID), .user(let ownerID):
                    generation.advance()
                    routes = routes.filter { $0.value.project.ownerID != ownerID }
                case .everything:
                    generation.advance()
                    routes.removeAll()
                case .activity, .message:
                    break  // a route does not depend on when the project was last used
                }
            }
        }
    }

    /// The route of `owner/name` if it is in memory and the change feed is live (so it is current).
    func cachedRoute(owner: UserName, name: ProjectName) -> Route? {
        var recalled: Recalled?
        return cachedRoute(owner: owner, name: name, recalled: &recalled)
    }

    /// Which project a connection's last request went to.
    struct ProjectKey: Equatable {
        let owner: UserName
        let name: ProjectName
    }

    /// What a connection keeps of its last request's route (`Gateway.Recall`).
    typealias Recalled = EnvHubServer.Recalled<ProjectKey, Route>

    /// `cachedRoute(owner:name:)`, taken from `recalled` without the table's lock when it is
    /// the same project and nothing changed since; `recalled` is what was found.
    func cachedRoute(owner: UserName, name: ProjectName, recalled: inout Recalled?) -> Route? {
        guard store.changes.isLive else { return nil }
        return generation.recall(ProjectKey(owner: owner, name: name), &recalled) {
            routes.withLockedValue { routes in routes[Self.key(owner, name)].map { ($0, generation.current) } }
        }
    }

    /// The route of `owner/name`, or nil when there is no such project.
    func route(owner: UserName, name: ProjectName) async throws -> Route? {
        if let cached = cachedRoute(owner: owner, name: name) { return cached }
        let key = Self.key(owner, name)
        let live = store.changes.isLive
        let generation = self.generation.current
        guard let project = try await store.project(owner: owner, name: name) else { return nil }
        var upstream: Endpoint?
        if project.state == .active, let json = try await store.runtimeRecord(projectID: project.id) {
            upstream = (try? JSONDecoder().decode(EnvironmentRecord.self, from: Data(json.utf8)))?.exposedEndpoint
        }
        let route = Route(project: project, upstream: upstream, template: templates.template(named: project.template))
        routes.withLockedValue { routes in
            // Only what was read after the last invalidation may be kept.
            guard live, generation == self.generation.current else { return }
            if routes.count >= Self.maxEntries { routes.removeAll() }
            routes[key] = route
        }
        return route
    }

    private static func key(_ owner: UserName, _ name: ProjectName) -> String { "\(owner.rawValue)/\(name.rawValue)" }
}
