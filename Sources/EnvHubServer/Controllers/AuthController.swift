import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird

/// Sign-up, sign-in, sign-out and token checks under `/api/auth`.
struct AuthController {
    let store: any HubStore
    let sessions: SessionAuthority
    let hasher: PasswordHasher
    let throttle: LoginThrottle
    let cookie: SessionCookie
    let openSignup: Bool
    let decoyHash: String

    struct Credentials: Decodable {
        let username: String
        let password: String
    }

    struct Registration: Decodable {
        let username: String
        let password: String
        let displayName: String?
        let email: String?
    }

    struct VerifyRequest: Decodable {
        let token: String
    }

    struct VerifyResponse: Encodable {
        let valid: Bool
        let user: UserJSON?
    }

    func addRoutes(to routes: HubRoutes) {
        routes.post("/api/auth/register", register)
        routes.post("/api/auth/login", login)
        routes.post("/api/auth/logout", logout)
        routes.get("/api/auth/me", me)
        routes.post("/api/auth/verify", verify)
    }

    @Sendable func register(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard openSignup else {
            throw EnvHubError.forbidden("open sign-up is off; ask an admin to create your account")
        }
        let body = try await JSON.decode(Registration.self, from: request, context: context)
        let user = try await AccountFactory(store: store, hasher: hasher).create(
            username: body.username, password: body.password, role: .user, displayName: body.displayName, email: body.email)
        return try await startSession(for: user, request: request, context: context, status: .created)
    }

    @Sendable func login(_ request: Request, context: HubRequestContext) async throws -> Response {
        let body = try await JSON.decode(Credentials.self, from: request, context: context)
        let now = Date()
        let attempt = throttle.attempt(by: body.username, request: request, context: context)
        try await throttle.check(attempt, now: now)
        var credentials: (user: User, passwordHash: String)?
        if let name = UserName(rawValue: body.username) { credentials = try await store.credentials(of: name) }
        // Unknown users are checked against a decoy hash, so the answer takes as long either way.
        let matches = try await hasher.verify(body.password, hash: credentials?.passwordHash ?? decoyHash)
        guard let user = credentials?.user, matches else {
            try await throttle.recordFailure(attempt, now: now)
            throw EnvHubError.unauthenticated("wrong user name or password")
        }
        try await throttle.recordSuccess(attempt)
        return try await startSession(for: user, request: request, context: context, status: .ok)
    }

    @Sendable func logout(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        try await sessions.revoke(sessionID: identity.sessionID)
        return .noContent(headers: cookie.clear(for: request, context: context))
    }

    @Sendable func me(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try .json(UserJSON(identity.user, showEmail: true))
    }

    /// For other services that hold a token: says whether it is valid and whose it is.
    @Sendable func verify(_ request: Request, context: HubRequestContext) async throws -> Response {
        let body = try await JSON.decode(VerifyRequest.self, from: request, context: context)
        guard let identity = await sessions.identity(for: body.token) else {
            return try .json(VerifyResponse(valid: false, user: nil))
        }
        return try .json(VerifyResponse(valid: true, user: UserJSON(identity.user, showEmail: false)))
    }

    private func startSession(for user: User, request: Request, context: HubRequestContext, status: HTTPResponse.Status) async throws -> Response {
        let (token, session) = try await sessions.issue(for: user)
        return try .json(
            SessionJSON(token: token, expiresAt: session.expiresAt, user: UserJSON(user, showEmail: true)),
            status: status,
            headers: cookie.set(token, expiresAt: session.expiresAt, for: request, context: context))
    }
}
