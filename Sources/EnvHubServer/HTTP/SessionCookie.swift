import Foundation
import Hummingbird

/// The HttpOnly, SameSite=Lax session cookie. It is Secure when the hub is told so
/// (`--secure-cookies`) or the request came through a TLS-terminating proxy that says
/// `X-Forwarded-Proto: https`.
struct SessionCookie {
    let secureByConfiguration: Bool

    func set(_ token: String, expiresAt: Date, for request: Request) -> HTTPFields {
        let maxAge = max(0, Int(expiresAt.timeIntervalSinceNow))
        return header("\(AuthenticationMiddleware.cookieName)=\(token); Max-Age=\(maxAge)", for: request)
    }

    func clear(for request: Request) -> HTTPFields {
        header("\(AuthenticationMiddleware.cookieName)=; Max-Age=0", for: request)
    }

    private func header(_ start: String, for request: Request) -> HTTPFields {
        let secure = secureByConfiguration || request.headers[values: .init("X-Forwarded-Proto")!].contains("https")
        var fields = HTTPFields()
        fields[.setCookie] = start + "; Path=/; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
        return fields
    }
}
