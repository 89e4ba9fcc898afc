import Hummingbird

/// Reads the session from `Authorization: Bearer …` or the session cookie and sets
/// `context.identity`. A missing or invalid credential leaves the request anonymous; routes
/// that need a user answer 401 themselves.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    static let cookieName = "envhub_session"
    let sessions: SessionAuthority

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.token(in: request) else { return try await next(request, context) }
        var context = context
        context.identity = await sessions.identity(for: token)
        if let identity = context.identity {
            context.logger[metadataKey: "user.name"] = .string(identity.user.name.rawValue)
        }
        return try await next(request, context)
    }

    static func token(in request: Request) -> String? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]) }
        }
        return request.cookies[cookieName]?.value
    }
}
