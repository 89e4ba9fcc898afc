import EnvHubCore
import HTTPTypes
import Hummingbird

/// The hub's guard against pages of other origins acting in a signed-in user's name
/// (cross-site request forgery, cross-site WebSocket hijacking). The session cookie is
/// SameSite=Lax, which keeps other sites' writes and fetches from carrying it, but not those
/// of the same site: a page on `blog.example.com` could post to `hub.example.com`, or open a
/// user's desktop WebSocket there, with the user's cookie.
///
/// So a request the cookie could authenticate that changes something (any method but GET,
/// HEAD and OPTIONS) or opens a WebSocket must come from the hub's own origin, as the browser
/// tells it:
/// - `Sec-Fetch-Site` (every current browser sends it): `same-origin`, or `none` (the user's
///   own doing), passes; `same-site` and `cross-site` are refused;
/// - without it, `Origin`: its host must be the request's Host;
/// - with neither, the client is no browser (or a very old one) and passes.
///
/// Requests with an Authorization field are not checked: another origin's page can neither
/// make a browser send one to the hub (that takes a CORS preflight, which the hub does not
/// allow) nor know the token. The rule is Go's `http.CrossOriginProtection` (Go 1.25), kept
/// to what the cookie authenticates.
///
/// The gateway adds a rule for users' apps (`gatewayRefusal`): another origin's page may only link
/// to one. It does not isolate the apps from the hub, whose origin they share unless they are
/// served on origins of their own (`AppOrigins`; README, "Apps on origins of their own").
enum CrossOrigin {
    /// What a browser says of the page a request comes from. The Fetch Metadata values are
    /// structured-field tokens (RFC 8941), compared as sent: browsers send them in lower case.
    struct Claims {
        var fetchSite: String?
        var fetchMode: String?
        var fetchDest: String?
        var origin: String?

        init() {}

        init(_ fields: HTTPFields) {
            fetchSite = fields[.secFetchSite]
            fetchMode = fields[.secFetchMode]
            fetchDest = fields[.secFetchDest]
            origin = fields[.origin]
        }
    }

    /// Why a request is refused, or nil: one that changes something (any method but GET, HEAD
    /// and OPTIONS) or opens a WebSocket, without an Authorization field, from a page that the
    /// browser says is of another origin than the hub's. `host`: the request's Host.
    static func refusal(
        method: HTTPRequest.Method, webSocket: Bool, hasAuthorization: Bool, claims: Claims, host: String?
    ) -> String? {
        guard !hasAuthorization else { return nil }
        switch method {
        case .get, .head, .options: guard webSocket else { return nil }
        default: break
        }
        if let fetchSite = claims.fetchSite {
            switch fetchSite {
            case "same-origin", "none": return nil
            default: return "refused a request from another origin (Sec-Fetch-Site: \(fetchSite)): \(rule)"
            }
        }
        guard let origin = claims.origin else { return nil }  // no browser
        if let host, let separator = origin.range(of: "://"),
           origin[separator.upperBound...].lowercased() == host.lowercased() {
            return nil
        }
        return "refused a request from another origin (Origin: \(origin)): \(rule)"
    }

    private static let rule = "a browser may change something or open a WebSocket with the hub's session cookie only from the hub's own pages"

    /// `refusal` for the request of `head`.
    static func refusal(of head: HTTPRequest) -> String? {
        refusal(
            method: head.method, webSocket: WebSocketTunnel.isWebSocketUpgrade(head),
            hasAuthorization: head.headerFields[.authorization] != nil, claims: Claims(head.headerFields), host: head.authority)
    }

    /// Why the gateway refuses a request for a user's app, or nil: what `refusal` refuses, and
    /// what a page of another origin asks for without following a link (framing the app,
    /// embedding or fetching what it serves). A page of the same site gets the cookie sent
    /// with those, so it could put a user's app, their desktop say, in a frame of its own and
    /// have them click in it, or probe what the app answers. Following a link (a top-level
    /// navigation: `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`) passes, from
    /// anywhere: web.dev's "resource isolation policy" on Fetch Metadata. Browsers that send no
    /// Sec-Fetch-Site are not checked for this; nor are requests with an Authorization field.
    static func gatewayRefusal(
        method: HTTPRequest.Method, webSocket: Bool, hasAuthorization: Bool, claims: Claims, host: String?
    ) -> String? {
        if let refusal = refusal(method: method, webSocket: webSocket, hasAuthorization: hasAuthorization, claims: claims, host: host) {
            return refusal
        }
        guard !hasAuthorization, let fetchSite = claims.fetchSite, fetchSite == "same-site" || fetchSite == "cross-site" else {
            return nil
        }
        if claims.fetchMode == "navigate", claims.fetchDest == "document" { return nil }
        return "refused a request for an app from a page of another origin (Sec-Fetch-Site: \(fetchSite), Sec-Fetch-Dest: "
            + "\(claims.fetchDest ?? "none")): other origins may only link to a user's app"
    }
}

/// Refuses, for the hub's own routes, what `CrossOrigin` refuses (403 `cross_origin`). The
/// gateway and the chat socket, which take their requests before the router, ask it themselves.
struct CrossOriginMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = CrossOrigin.refusal(of: request.head) { throw EnvHubError.crossOrigin(refusal) }
        return try await next(request, context)
    }
}

extension EnvHubError {
    /// 403 `cross_origin`: `CrossOrigin` refused the request.
    static func crossOrigin(_ refusal: String) -> Self {
        EnvHubError(code: "cross_origin", status: 403, message: refusal)
    }
}

extension HTTPField.Name {
    static let secFetchSite = Self("Sec-Fetch-Site")!
    static let secFetchMode = Self("Sec-Fetch-Mode")!
    static let secFetchDest = Self("Sec-Fetch-Dest")!
}
