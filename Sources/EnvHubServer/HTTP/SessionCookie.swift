import Foundation
import Hummingbird

/// The HttpOnly, SameSite=Lax session cookie. It is Secure when the hub is told so
/// (`--secure-cookies`) or the request came through a trusted TLS-terminating proxy
/// (`--trusted-proxies`) that says `X-Forwarded-Proto: https` (`ForwardedClaims`).
struct SessionCookie {
    let secureByConfiguration: Bool
    let trustedProxies: TrustedProxies

    func set(_ token: String, expiresAt: Date, for request: Request, context: HubRequestContext) -> HTTPFields {
        let maxAge = max(0, Int(expiresAt.timeIntervalSinceNow))
        return header("\(AuthenticationMiddleware.cookieName)=\(token); Max-Age=\(maxAge)", for: request, context: context)
    }

    func clear(for request: Request, context: HubRequestContext) -> HTTPFields {
        header("\(AuthenticationMiddleware.cookieName)=; Max-Age=0", for: request, context: context)
    }

    private func header(_ start: String, for request: Request, context: HubRequestContext) -> HTTPFields {
        let secure = secureByConfiguration
            || (trustedProxies.contains(context.remoteAddress) && ForwardedClaims(request.headers).https)
        var fields = HTTPFields()
        fields[.setCookie] = start + "; Path=/; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
        return fields
    }
}
