import AsyncHTTPClient
import EnvHubCore
import EnvHubStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The authenticated reverse proxy at `/u/{user}/{project}/…`, inside the hub: no separate
/// proxy process, no routes of its own to lose. Owners and admins pass; anonymous browsers are
/// sent to sign in, anonymous API clients get 401, anyone else 404. Bodies stream both ways
/// with back-pressure; nothing is held whole in memory.
struct Gateway: Sendable {
    let routes: RouteTable
    let sessions: SessionAuthority
    let activity: ActivityTracker
    /// How often an open WebSocket counts as use though nothing passes (an idle noVNC tab is in use).
    let openSocketUseInterval: Duration
    let client: HTTPClient

    /// `idleTimeout`: how long a response may go without a byte before it is abandoned.
    /// `cullAfter`: the idle culler's timeout, which open WebSockets must keep away.
    init(
        store: any HubStore, templates: TemplateCatalog, sessions: SessionAuthority, activity: ActivityTracker,
        idleTimeout: Duration, cullAfter: Duration?
    ) {
        self.openSocketUseInterval = min(.seconds(30), (cullAfter ?? .seconds(3600)) / 4)
        self.routes = RouteTable(store: store, templates: templates)
        self.sessions = sessions
        self.activity = activity
        self.client = Self.client(idleTimeout: idleTimeout)
    }

    /// One client per idle timeout for the life of the process (in practice one): they are
    /// never shut down, so no hub can drop one while a request still uses it.
    private static let clients = NIOLockedValueBox<[Duration: HTTPClient]>([:])

    private static func client(idleTimeout: Duration) -> HTTPClient {
        clients.withLockedValue { clients in
            if let client = clients[idleTimeout] { return client }
            // Never follow redirects or decompress: the browser sees exactly what the app sent.
            var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
            configuration.timeout.connect = .seconds(5)
            configuration.timeout.read = .nanoseconds(Int64(idleTimeout.components.seconds) * 1_000_000_000)
            configuration.decompression = .disabled
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[idleTimeout] = client
            return client
        }
    }

    func addRoutes(to router: Router<HubRequestContext>) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
        for path in ["/u/:user/:project", "/u/:user/:project/**"] {
            for method in methods {
                router.on(RouterPath(path), method: method) { request, context in try await handle(request, context: context) }
            }
        }
    }

    /// A request's place under the gateway: whose project, and the path after the prefix.
    struct Address {
        let owner: UserName
        let project: ProjectName
        /// `/u/alice/web`
        let prefix: String
        /// What follows the prefix, as sent (still percent-encoded), "" when nothing does.
        let rest: String

        init?(path: String) {
            let segments = path.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
            guard segments.count >= 4, segments[0].isEmpty, segments[1] == "u",
                  let owner = UserName(rawValue: String(segments[2])) else { return nil }
            let projectAndRest = segments[3].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let project = ProjectName(rawValue: String(projectAndRest[0])) else { return nil }
            self.owner = owner
            self.project = project
            prefix = "/u/\(owner)/\(project)"
            rest = projectAndRest.count == 2 ? "/" + projectAndRest[1] : ""
        }
    }

    func handle(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let address = Address(path: request.uri.path) else { throw EnvHubError.notFound("no such project") }
        guard let identity = context.identity else {
            guard Self.wantsHTML(request.headers) else { throw EnvHubError.unauthenticated() }
            let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            let encoded = next.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "/"
            return Response(status: .found, headers: [.location: "/login?next=\(encoded)", .cacheControl: "no-store"])
        }
        let route = try await visibleRoute(address, for: identity.user)
        activity.touch(route.project.id)
        guard route.project.state == .active, let port = route.port else {
            return try StoppedPage.response(route.project, visitor: identity.user, html: Self.wantsHTML(request.headers))
        }
        if address.rest.isEmpty {
            let query = request.uri.query.map { "?" + $0 } ?? ""
            return Response(status: .permanentRedirect, headers: [.location: address.prefix + "/" + query])
        }
        if address.rest == "/", request.uri.query == nil, request.method == .get, let entry = route.template?.entryPath {
            let filled = Placeholders(user: address.owner.rawValue, project: address.project.rawValue, secret: "", endpoints: [:])
                .fill(entry)
            return Response(status: .found, headers: [.location: address.prefix + filled, .cacheControl: "no-store"])
        }
        return try await forward(request, to: port, address: address, route: route, context: context)
    }

    /// The route, if `user` may use it: the owner and admins; anyone else learns nothing.
    func visibleRoute(_ address: Address, for user: User) async throws -> RouteTable.Route {
        guard user.isAdmin || user.name == address.owner,
              let route = try await routes.route(owner: address.owner, name: address.project) else {
            throw EnvHubError.notFound("no project \(address.owner)/\(address.project)")
        }
        return route
    }

    private func forward(
        _ request: Request, to port: Int, address: Address, route: RouteTable.Route, context: HubRequestContext
    ) async throws -> Response {
        guard let template = route.template else { throw EnvHubError.unavailable("the project's template no longer exists") }
        let path = template.keepPrefix ? address.prefix + address.rest : address.rest
        let upstream = "http://127.0.0.1:\(port)"
        var outgoing = HTTPClientRequest(url: upstream + path + (request.uri.query.map { "?" + $0 } ?? ""))
        outgoing.method = .init(rawValue: request.method.rawValue)
        let fields = ForwardedHeaders.request(
            request.headers, host: request.head.authority, clientAddress: context.remoteAddress?.ipAddress, prefix: address.prefix,
            sessionCookie: AuthenticationMiddleware.cookieName)
        for field in fields { outgoing.headers.add(name: field.name.rawName, value: field.value) }
        if request.method != .get && request.method != .head {
            let length = request.headers[.contentLength].flatMap(Int64.init)
            let projectID = route.project.id
            let body = request.body.map { [activity] chunk in
                activity.touch(projectID)
                return chunk
            }
            outgoing.body = .stream(body, length: length.map { .known($0) } ?? .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: .distantFuture)
        } catch {
            throw EnvHubError(code: "bad_gateway", status: 502, message: "\(address.owner)/\(address.project) did not answer: \(error)")
        }
        let headers = ForwardedHeaders.response(
            Self.fields(response.headers), prefix: address.prefix, upstream: upstream, prefixStripped: !template.keepPrefix)
        let projectID = route.project.id
        let activity = activity
        return Response(
            status: .init(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: headers,
            body: ResponseBody { writer in
                for try await chunk in response.body {
                    activity.touch(projectID)
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            })
    }

    static func fields(_ headers: HTTPHeaders) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { fields.append(.init(name: name, value: value)) }
        }
        return fields
    }

    /// Browsers ask for HTML; API clients and scripts do not.
    static func wantsHTML(_ headers: HTTPFields) -> Bool {
        headers[values: .accept].contains { $0.contains("text/html") }
    }
}

extension CharacterSet {
    /// What may stand unescaped in a query value.
    static let urlQueryValueAllowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+#"))
}
