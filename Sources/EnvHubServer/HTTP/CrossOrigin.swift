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
/// to what the cookie authenticates. It does not isolate the apps behind the gateway, which
/// share the hub's origin (README, "The gateway").
enum CrossOrigin {
    /// Whether a request must come from the hub's origin.
    static func isChecked(method: HTTPRequest.Method, webSocket: Bool, hasAuthorization: Bool) -> Bool {
        guard !hasAuthorization else { return false }
        switch method {
        case .get, .head, .options: return webSocket
        default: return true
        }
    }

    /// Why a checked request is refused, or nil when its browser says it comes from the hub's
    /// origin (or it comes from no browser). `host`: the request's Host.
    static func refusal(fetchSite: String?, origin: String?, host: String?) -> String? {
        if let fetchSite {
            switch fetchSite.lowercased() {
            case "same-origin", "none": return nil
            default: return "refused a request from another origin (Sec-Fetch-Site: \(fetchSite)): \(rule)"
            }
        }
        guard let origin else { return nil }
        if let host, let separator = origin.range(of: "://"),
           origin[separator.upperBound...].lowercased() == host.lowercased() {
            return nil
        }
        return "refused a request from another origin (Origin: \(origin)): \(rule)"
    }

    private static let rule = "a browser may change something or open a WebSocket with the hub's session cookie only from the hub's own pages"

    /// Why the request of `head` is refused, or nil (`isChecked`, `refusal`).
    static func refusal(of head: HTTPRequest) -> String? {
        let fields = head.headerFields
        guard isChecked(
            method: head.method, webSocket: WebSocketTunnel.isWebSocketUpgrade(head), hasAuthorization: fields[.authorization] != nil)
        else { return nil }
        return refusal(fetchSite: fields[.secFetchSite], origin: fields[.origin], host: head.authority)
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
}
