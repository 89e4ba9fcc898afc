import EnvHubCore
import EnvHubStore
import EnvHubTestSupport
import Foundation
import Testing

@testable import EnvHubServer

/// What keeps a route in memory and what drops it.
@Suite struct RouteTableTests {
    /// The gateway records use every few seconds while an app is busy: that must not send
    /// every request of that moment to the store again. A real change still does.
    @Test func recordedUseKeepsTheRouteAndAChangeDropsIt() async throws {
        try await ActivityTrackerTests.withProject { store, web in
            let routes = RouteTable(store: store, templates: TemplateCatalog())
            #expect(routes.cachedRoute(owner: web.owner, name: web.name) == nil)
            #expect(try await routes.route(owner: web.owner, name: web.name)?.project.id == web.id)
            #expect(routes.cachedRoute(owner: web.owner, name: web.name) != nil, "read once, then in memory")

            try await store.recordActivity([web.id: Date()])
            #expect(try await store.project(id: web.id)?.lastActivity != nil)
            #expect(routes.cachedRoute(owner: web.owner, name: web.name) != nil, "recorded use is no change of route")

            var described = web
            described.description = "the team's site"
            _ = try await store.updateProject(described)
            #expect(routes.cachedRoute(owner: web.owner, name: web.name) == nil, "a change of the project drops it")
            #expect(try await routes.route(owner: web.owner, name: web.name)?.project.description == "the team's site")
        }
    }
}
