import EnvHubCore
import Foundation
import HTTPTypes
import Hummingbird

/// How a browser signed in to the hub gets signed in to a user's app origin (`AppOrigins`):
///
/// 1. The app origin, asked for `/u/alice/web/…` without its cookie, sets a random state in a
///    cookie of its own (one per attempt, named for it: tabs restored at once each finish their
///    own) and sends the browser to the hub's `GET /api/auth/app-ticket?next=…&state=…` (the
///    gateway's `start`).
/// 2. The hub, if the browser is signed in there (else after the sign-in page) and may open
///    alice's apps, sends it back to `/.envhub/app-session?ticket=…&next=…` on alice's origin
///    with an `AppTicket` for its session and that state.
/// 3. The app origin takes the ticket with the state cookie, sets its own session cookie (a
///    token good on that origin alone, which ends with the hub session) and sends the browser
///    on to `next`.
///
/// Signing out of the hub ends the session, and with it every app origin's cookie.
struct AppSignIn {
    static let ticketPath = "/api/auth/app-ticket"
    static let sessionPath = "/.envhub/app-session"
    /// Followed by the state: `envhub_app_state_{state}=1`.
    static let stateCookiePrefix = "envhub_app_state_"

    let origins: AppOrigins?
    let sessions: SessionAuthority
    let adminAppAccess: Bool

    /// Step 1: the answer to a browser at an app origin without its cookie. `next`: the request target.
    static func start(at origins: AppOrigins, next: String) -> FixedAnswer {
        var generator = SystemRandomNumberGenerator()
        let state = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
        var answer = Gateway.redirect(to: origins.hubOrigin + ticketTarget(next: next, state: state))
        // Only the sign-in path is sent it; ten minutes leave time to type a password.
        answer.headers.append(SessionCookie.field("\(stateCookiePrefix)\(state)=1; Path=\(sessionPath); Max-Age=600", secure: origins.secure))
        return answer
    }

    func addRoutes(to routes: HubRoutes) {
        routes.get(Self.ticketPath, ticket)
    }

    /// Step 2, on the hub's origin.
    @Sendable func ticket(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let origins else {
            throw EnvHubError.notFound("this hub serves apps on its own origin: it has no apps URL (--apps-url)")
        }
        let query = request.uri.queryParameters
        guard let next = query["next"].map(String.init), let address = Self.appAddress(next),
              let state = query["state"].map(String.init), Self.isState(state)
        else {
            throw EnvHubError.badRequest("next must be a path under /u/{user}/{project}/ and state the app origin's")
        }
        guard let identity = context.identity else {
            guard Gateway.wantsHTML(request.headers) else { throw EnvHubError.unauthenticated() }
            return Gateway.signInFirst(returningTo: Self.ticketTarget(next: next, state: state)).response
        }
        guard Gateway.may(identity.user, see: address.owner, adminAppAccess: adminAppAccess) else {
            if identity.user.isAdmin { throw Gateway.adminsKeptOut }
            throw EnvHubError.notFound("no project \(address.owner)/\(address.project)")
        }
        let ticket = try await sessions.ticket(for: identity, app: address.owner, state: state)
        var answer = Gateway.redirect(
            to: origins.origin(of: address.owner) + Self.sessionPath + "?ticket=" + ticket + "&next=" + Self.queryValue(next))
        answer.headers[.referrerPolicy] = "no-referrer"
        return answer.response
    }

    /// Step 3, on `owner`'s app origin (`AppOriginMiddleware`).
    func session(_ request: Request, owner: UserName) async throws -> Response {
        guard let origins else { throw EnvHubError.notFound("no such route") }
        let query = request.uri.queryParameters
        guard let next = query["next"].map(String.init), Self.appAddress(next)?.owner == owner,
              let ticket = query["ticket"].map(String.init)
        else {
            throw EnvHubError.badRequest("ticket is missing, or next is not a path under /u/\(owner)/")
        }
        var states: Set<Substring> = []
        for field in request.headers[values: .cookie] {
            CookieField.forEachPair(in: field) { pair in
                if pair.name.hasPrefix(Self.stateCookiePrefix) { states.insert(pair.name.dropFirst(Self.stateCookiePrefix.count)) }
                return true
            }
        }
        guard let (token, expiresAt, state) = await sessions.appToken(redeeming: ticket, app: owner, states: states) else {
            throw EnvHubError.badRequest(
                "this sign-in to \(owner)'s apps has expired or was begun in another browser; open the app again")
        }
        var headers: HTTPFields = [.location: next, .cacheControl: "no-store", .referrerPolicy: "no-referrer"]
        let maxAge = max(0, Int(expiresAt.timeIntervalSinceNow))
        // Over HTTPS a `__Host-` cookie, which no sibling app origin can shadow.
        headers.append(SessionCookie.field(
            "\(AuthenticationMiddleware.cookieName(secure: origins.secure))=\(token); Path=/; Max-Age=\(maxAge)", secure: origins.secure))
        headers.append(SessionCookie.field(
            "\(Self.stateCookiePrefix)\(state)=; Path=\(Self.sessionPath); Max-Age=0", secure: origins.secure))
        return Response(status: .found, headers: headers)
    }

    /// `next` when it is a path under `/u/{user}/{project}` of visible ASCII (it becomes a Location).
    private static func appAddress(_ next: String) -> Gateway.Address? {
        guard next.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return Gateway.Address(target: next)
    }

    private static func isState(_ state: String) -> Bool {
        (1...64).contains(state.utf8.count)
            && state.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Step 2's path and query on the hub.
    private static func ticketTarget(next: String, state: String) -> String {
        ticketPath + "?next=" + queryValue(next) + "&state=" + state
    }

    private static func queryValue(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? ""
    }
}

/// On an app origin the hub serves that user's apps and the last step of signing in to them,
/// and its icon (which browsers ask every origin for), nothing else: not its API, nor its
/// pages (which would run on the app origin).
struct AppOriginMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let signIn: AppSignIn

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let owner = signIn.origins?.owner(ofHost: request.head.authority) else { return try await next(request, context) }
        let path = request.uri.path
        if path == AppSignIn.sessionPath, request.method == .get { return try await signIn.session(request, owner: owner) }
        if Gateway.claims(path: path) || path == WebController.iconPath { return try await next(request, context) }
        throw EnvHubError.notFound("\(owner)'s app origin serves only \(owner)'s apps, under /u/\(owner)/")
    }
}

extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
