import Foundation
import Hummingbird

/// Reads the session from `Authorization: Bearer …` or the session cookie and sets
/// `context.identity`. A missing or invalid credential leaves the request anonymous; routes
/// that need a user answer 401 themselves.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    static let cookieName = "envhub_session"
    /// The session cookie's name when it is Secure (`SessionCookie`, `AppSignIn`). A browser
    /// takes a `__Host-` cookie only from the host itself, so another host of the same site (an
    /// app origin, a sibling subdomain) cannot plant one to shadow it (cookie tossing).
    static let hostOnlyCookieName = "__Host-" + cookieName

    static func cookieName(secure: Bool) -> String { secure ? hostOnlyCookieName : cookieName }

    /// Either name: what the gateway never passes to an app nor lets an app set.
    static func isSessionCookie(_ name: Substring) -> Bool { name == cookieName || name == hostOnlyCookieName }
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

    static func token(in request: Request) -> String? { token(in: request.headers) }

    /// The Bearer token, or else the session cookie's value.
    static func token(in fields: HTTPFields) -> String? {
        token(authorization: fields[.authorization], cookies: fields[values: .cookie])
    }

    /// The Bearer token of an Authorization value, or else the session cookie's value in the
    /// Cookie fields: the first `__Host-` one, else the first other.
    static func token(authorization: String?, cookies: some Sequence<String>) -> String? {
        if let authorization {
            // The scheme is case-insensitive (RFC 9110 §11.1), and one or more spaces follow it
            // (§11.4); "Bearer " as sent is checked first. By UTF-8 bytes: dropping Characters
            // would look for grapheme boundaries in every token.
            if authorization.utf8.starts(with: "Bearer ".utf8) {
                return String(Substring(authorization.utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") }))
            }
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1].drop { $0 == " " }) }
        }
        // Fields that hold no `__Host-` at all (nearly all) are not read twice.
        for field in cookies where mentionsHostOnly(field) {
            if let value = CookieField.value(named: hostOnlyCookieName, in: field) { return String(value) }
        }
        for field in cookies {
            if let value = CookieField.value(named: cookieName, in: field) { return String(value) }
        }
        return nil
    }

    private static func mentionsHostOnly(_ field: String) -> Bool {
        var field = field  // `withUTF8` is mutating: it makes a bridged string native first
        return field.withUTF8 { HeadBytes.contains(UnsafeRawBufferPointer($0), 0..<$0.count, "__Host-") }
    }
}
