import EnvHubCore
import EnvHubStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The authenticated reverse proxy at `/u/{user}/{project}/…`, inside the hub: no separate
/// proxy process, no routes of its own to lose. Owners and admins pass (admins unless
/// `adminAppAccess` is off: then 403); anonymous browsers are sent to sign in, anonymous API
/// clients get 401, anyone else 404.
///
/// With `AppOrigins` (`--apps-url`) each user's apps are served on an origin of their own:
/// there a browser signs in through the hub (`AppSignIn`) and a stopped project's page is the
/// hub's; on the hub's origin, requests with the session cookie are sent there, and only
/// requests with a token (scripts) are served.
///
/// This type decides (`answer`); on the client connection's event loop `GatewayByteProxy`
/// moves the bytes of plain requests, `GatewayProxyHandler` those of other requests NIO's
/// parser has read, and `WebSocketTunnel` those of WebSocket upgrades.
struct Gateway: Sendable {
    let routes: RouteTable
    let sessions: SessionAuthority
    let activity: ActivityTracker
    /// How long an app may neither send a byte nor take one of the request before its exchange is abandoned.
    let idleTimeout: Duration
    /// How long a connection to an app waits in the pool for the next request (`AppConfig.gatewayKeepAliveTimeout`).
    let keepAliveTimeout: Duration
    let trustedProxies: TrustedProxies
    /// Admins pass into other users' apps (`AppConfig.adminAppAccess`).
    let adminAppAccess: Bool
    /// Where users' apps are served when not on the hub's origin (`AppConfig.appOrigins`).
    let origins: AppOrigins?
    let metrics: HubMetrics?

    init(
        store: any HubStore, templates: TemplateCatalog, sessions: SessionAuthority, activity: ActivityTracker,
        idleTimeout: Duration, keepAliveTimeout: Duration, trustedProxies: TrustedProxies = .none, adminAppAccess: Bool = true,
        origins: AppOrigins? = nil, metrics: HubMetrics? = nil
    ) {
        self.routes = RouteTable(store: store, templates: templates)
        self.sessions = sessions
        self.activity = activity
        self.idleTimeout = idleTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.trustedProxies = trustedProxies
        self.adminAppAccess = adminAppAccess
        self.origins = origins
        self.metrics = metrics
    }

    /// The route pattern gateway requests are counted under in the metrics.
    static let metricsRoute = "/u/:user/:project/**"

    /// Whether a request is the gateway's, by its head or its request target.
    static func claims(_ head: HTTPRequest) -> Bool { head.path.map(claims(path:)) ?? false }
    static func claims(path: String) -> Bool { path.hasPrefix("/u/") }

    /// Gateway requests that reach the router: WebSocket upgrades that are not tunnelled
    /// (which get the same 401/404/503 answers), and any request when the server was built
    /// without `GatewayProxyHandler`.
    func addRoutes(to router: Router<HubRequestContext>) {
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
        for path in ["/u/:user/:project", "/u/:user/:project/**"] {
            for method in methods {
                router.on(RouterPath(path), method: method) { request, context in
                    switch await answer(Request(request.head), remoteAddress: context.remoteAddress) {
                    case .respond(let answer):
                        return answer.response
                    case .forward:
                        // Only when the environment started between the tunnel's look and this one.
                        throw EnvHubError(code: "environment_changed", status: 503,
                                          message: "the environment changed while the request arrived; retry",
                                          retryAfterSeconds: 1)
                    }
                }
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
        /// `?…` as sent, or "".
        let query: String

        /// `target`: the request target, path and query.
        init?(target: String) {
            // Cut at ASCII bytes of the UTF-8 view: its indices are the string's own, and this
            // runs for every gateway request.
            let bytes = target.utf8
            let slash = UInt8(ascii: "/")
            let pathEnd = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
            guard bytes.starts(with: "/u/".utf8) else { return nil }
            let ownerStart = bytes.index(bytes.startIndex, offsetBy: 3)
            guard let ownerEnd = bytes[ownerStart..<pathEnd].firstIndex(of: slash),
                  let owner = UserName(rawValue: String(target[ownerStart..<ownerEnd])) else { return nil }
            let projectStart = bytes.index(after: ownerEnd)
            let projectEnd = bytes[projectStart..<pathEnd].firstIndex(of: slash) ?? pathEnd
            guard let project = ProjectName(rawValue: String(target[projectStart..<projectEnd])) else { return nil }
            self.owner = owner
            self.project = project
            prefix = String(target[..<projectEnd])
            rest = String(target[projectEnd..<pathEnd])
            query = String(target[pathEnd...])
        }
    }

    /// What a client connection's last request found in memory (`cachedAnswer`). Its next
    /// request, most often with the same token to the same project, then takes neither the
    /// sessions' lock nor the routes' lock, which every connection on both event loops shares.
    struct Recall {
        var identity: SessionAuthority.Recalled?
        var route: RouteTable.Recalled?
    }

    /// The answer from what is in memory, or nil when the session or the route must be read
    /// from the store first (then `answer` does that).
    func cachedAnswer(_ request: Request, remoteAddress: SocketAddress?) -> GatewayAnswer? {
        var recall = Recall()
        return cachedAnswer(request, remoteAddress: remoteAddress, recall: &recall)
    }

    /// `cachedAnswer(_:remoteAddress:)` for a connection that keeps `recall` from one request to the next.
    func cachedAnswer(_ request: Request, remoteAddress: SocketAddress?, recall: inout Recall) -> GatewayAnswer? {
        if let refusal = request.crossOriginRefusal { return .respond(FixedAnswer(.crossOrigin(refusal))) }
        guard let address = Address(target: request.target) else { return .respond(Self.noSuchProject) }
        let appOrigin = origins?.owner(ofHost: request.host)
        if let appOrigin, appOrigin != address.owner { return .respond(Self.noSuchProject) }
        var identity: Identity?
        if let token = request.token {
            guard let cached = sessions.cachedIdentity(for: token, appOrigin: appOrigin, recalled: &recall.identity) else {
                return nil
            }
            identity = cached
        }
        guard let identity, may(identity.user, see: address) else {
            return answer(request, address: address, appOrigin: appOrigin, identity: identity, route: nil, remoteAddress: remoteAddress)
        }
        guard let route = routes.cachedRoute(owner: address.owner, name: address.project, recalled: &recall.route) else {
            return nil
        }
        return answer(request, address: address, appOrigin: appOrigin, identity: identity, route: route, remoteAddress: remoteAddress)
    }

    /// The answer, reading the session and the route from the store when they are not in memory.
    func answer(_ request: Request, remoteAddress: SocketAddress?) async -> GatewayAnswer {
        if let answer = cachedAnswer(request, remoteAddress: remoteAddress) { return answer }
        guard let address = Address(target: request.target) else { return .respond(Self.noSuchProject) }
        let appOrigin = origins?.owner(ofHost: request.host)
        var identity: Identity?
        if let token = request.token {
            identity = await sessions.identity(for: token, appOrigin: appOrigin)
        }
        var route: RouteTable.Route?
        if let identity, may(identity.user, see: address) {
            do {
                route = try await routes.route(owner: address.owner, name: address.project)
            } catch {
                return .respond(FixedAnswer(.unavailable("the hub cannot read its store: \(error)")))
            }
        }
        return answer(request, address: address, appOrigin: appOrigin, identity: identity, route: route, remoteAddress: remoteAddress)
    }

    private func may(_ user: User, see address: Address) -> Bool {
        Self.may(user, see: address.owner, adminAppAccess: adminAppAccess)
    }

    /// The owner, and admins when they may pass into other users' apps; anyone else learns
    /// nothing (an admin kept out is told why: admins see every project anyway).
    static func may(_ user: User, see owner: UserName, adminAppAccess: Bool) -> Bool {
        user.name == owner || (user.isAdmin && adminAppAccess)
    }

    /// Why an admin is refused at another user's app, when `adminAppAccess` is off.
    static let adminsKeptOut = EnvHubError.forbidden(
        "admins may not open other users' apps on this hub (ENVHUB_ADMIN_APP_ACCESS=false)")

    private static let noSuchProject = FixedAnswer(.notFound("no such project"))

    /// The rules, once the visitor and (if they may see it) the route are known. `appOrigin`:
    /// whose app origin the request came to, nil for the hub's.
    private func answer(
        _ request: Request, address: Address, appOrigin: UserName?, identity: Identity?, route: RouteTable.Route?,
        remoteAddress: SocketAddress?
    ) -> GatewayAnswer {
        guard let identity else {
            guard request.wantsHTML else { return .respond(FixedAnswer(.unauthenticated())) }
            if let origins, appOrigin != nil {
                return .respond(AppSignIn.start(at: origins, next: request.target))
            }
            return .respond(Self.signInFirst(returningTo: request.target))
        }
        guard may(identity.user, see: address), let route else {
            if identity.user.isAdmin, !adminAppAccess { return .respond(FixedAnswer(Self.adminsKeptOut)) }
            return .respond(FixedAnswer(.notFound("no project \(address.owner)/\(address.project)")))
        }
        guard route.project.state == .active, let upstream = route.upstream else {
            if let origins, appOrigin != nil, request.wantsHTML {
                // The stopped page calls the hub's API, which an app origin does not serve.
                return .respond(Self.redirect(to: origins.hubOrigin + request.target))
            }
            return .respond(StoppedPage.answer(route.project, visitor: identity.user, html: request.wantsHTML))
        }
        if let origins, appOrigin == nil, !request.hasAuthorization {
            // A browser: its app is served on its own origin, never with the hub's cookie.
            return .respond(Self.redirect(to: origins.origin(of: address.owner) + request.target, status: .temporaryRedirect))
        }
        if address.rest.isEmpty {
            return .respond(FixedAnswer(status: .permanentRedirect, headers: [.location: address.prefix + "/" + address.query]))
        }
        guard let (keepPrefix, entryPath) = route.forwarding else {
            return .respond(FixedAnswer(.unavailable("the project's template no longer exists")))
        }
        if address.rest == "/", address.query.isEmpty, request.method == .get, let entryPath {
            let filled = Placeholders(user: address.owner.rawValue, project: address.project.rawValue, secret: "", endpoints: [:])
                .fill(entryPath)
            return .respond(Self.redirect(to: address.prefix + filled))
        }
        return .forward(ProxyTarget(
            upstream: upstream, path: (keepPrefix ? address.prefix + address.rest : address.rest) + address.query,
            projectID: route.project.id, prefix: address.prefix,
            prefixStripped: !keepPrefix, clientHost: request.host, clientAddress: remoteAddress,
            clientIsTrustedProxy: trustedProxies.contains(remoteAddress), keepUpgrade: request.isWebSocketUpgrade))
    }

    /// A redirect no cache keeps: where it leads depends on the session and the project's state.
    static func redirect(to location: String, status: HTTPResponse.Status = .found) -> FixedAnswer {
        FixedAnswer(status: status, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// To the sign-in page, which comes back to `next` (a path and query on the hub).
    static func signInFirst(returningTo next: String) -> FixedAnswer {
        redirect(to: "/login?next=" + (next.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "/"))
    }

    /// The few things of a request the gateway's rules read, from NIO's parsed head or from
    /// the byte path's (`PlainGatewayRequest`).
    struct Request: Sendable {
        var method: HTTPRequest.Method
        /// The request target, path and query, as sent.
        var target: String
        var host: String?
        /// A Bearer token or the session cookie (`AuthenticationMiddleware.token`).
        var token: String?
        /// It has an Authorization field: a script's, which no other page can make a browser send.
        var hasAuthorization: Bool
        var wantsHTML: Bool
        var isWebSocketUpgrade: Bool
        /// Why `CrossOrigin` refuses the request, if it does (`CrossOrigin.gatewayRefusal`).
        var crossOriginRefusal: String?
    }

    /// Browsers ask for HTML; API clients and scripts do not.
    static func wantsHTML(_ headers: HTTPFields) -> Bool {
        headers[values: .accept].contains(where: wantsHTML(accept:))
    }

    /// Whether one Accept field asks for HTML.
    static func wantsHTML(accept: String) -> Bool {
        var accept = accept
        return accept.withUTF8 { wantsHTML(accept: UnsafeRawBufferPointer($0), 0..<$0.count) }
    }

    /// Whether the Accept field value at `range` of `bytes` asks for HTML. (By bytes: with
    /// Foundation imported, `String.contains` is NSString's.)
    static func wantsHTML(accept bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        HeadBytes.contains(bytes, range, "text/html")
    }
}

extension Gateway.Request {
    init(_ head: HTTPRequest) {
        let fields = head.headerFields, webSocket = WebSocketTunnel.isWebSocketUpgrade(head)
        let hasAuthorization = fields[.authorization] != nil
        self.init(
            method: head.method, target: head.path ?? "", host: head.authority,
            token: AuthenticationMiddleware.token(in: fields), hasAuthorization: hasAuthorization,
            wantsHTML: Gateway.wantsHTML(fields), isWebSocketUpgrade: webSocket,
            crossOriginRefusal: CrossOrigin.gatewayRefusal(
                method: head.method, webSocket: webSocket, hasAuthorization: hasAuthorization,
                claims: CrossOrigin.Claims(fields), host: head.authority))
    }
}

extension CharacterSet {
    /// What may stand unescaped in a query value.
    static let urlQueryValueAllowed = CharacterSet.urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+#"))
}
