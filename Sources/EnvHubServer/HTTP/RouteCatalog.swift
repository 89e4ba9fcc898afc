import EnvHubCore
import Hummingbird
import NIOConcurrencyHelpers

/// Every API route, as method and OpenAPI-style path (`/api/users/{user}`): the router is
/// built from it, the 405 answers use it, and the contract test compares it with `/openapi.json`.
public final class RouteCatalog: Sendable {
    public struct Route: Hashable, Sendable, CustomStringConvertible {
        public let method: HTTPRequest.Method
        public let path: String
        public var description: String { "\(method.rawValue) \(path)" }
    }

    private let storage = NIOLockedValueBox<[Route]>([])

    public var routes: [Route] { storage.withLockedValue { $0 } }

    func add(_ route: Route) { storage.withLockedValue { $0.append(route) } }

    /// The methods the catalog knows for a concrete path such as `/api/users/alice`.
    func allowedMethods(forPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == segments.count else { return false }
            return zip(pattern, segments).allSatisfy { template, actual in
                template.hasPrefix("{") ? !actual.isEmpty : template == actual
            }
        }.map(\.method)
    }
}

/// Registers handlers on the router and records them in the catalog.
struct HubRoutes {
    typealias Handler = @Sendable (Request, HubRequestContext) async throws -> Response

    let router: Router<HubRequestContext>
    let catalog: RouteCatalog

    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        catalog.add(.init(method: method, path: path))
        let hummingbirdPath = path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") ? ":" + segment.dropFirst().dropLast() : segment
        }.joined(separator: "/")
        router.on(RouterPath(hummingbirdPath), method: method) { request, context in
            try await handler(request, context)
        }
    }

    func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }
    func put(_ path: String, _ handler: @escaping Handler) { on(.put, path, handler) }
    func patch(_ path: String, _ handler: @escaping Handler) { on(.patch, path, handler) }
    func delete(_ path: String, _ handler: @escaping Handler) { on(.delete, path, handler) }
}

extension HubRequestContext {
    /// A path parameter that the route pattern guarantees.
    func pathParameter(_ name: String) throws(EnvHubError) -> String {
        guard let value = parameters.get(name) else { throw .notFound("no such route") }
        return value
    }
}
