import Foundation
import HTTPTypes
import Hummingbird

/// The HttpOnly, SameSite=Lax session cookie. It is Secure when the hub is told so
/// (`--secure-cookies`) or the request came through a trusted TLS-terminating proxy
/// (`--trusted-proxies`) that says `X-Forwarded-Proto: https` (`ForwardedClaims`).
///
/// A Secure one is named `__Host-envhub_session`, which a browser takes only from the hub's
/// own host: a page on another host of the same site (an app on a sibling subdomain) can set
/// `envhub_session` for the whole domain, but not this one, and the hub reads it first
/// (`AuthenticationMiddleware.token`), so such a cookie can neither sign the browser out nor
/// into another account.
struct SessionCookie {
    let secureByConfiguration: Bool
    let trustedProxies: TrustedProxies

    func set(_ token: String, expiresAt: Date, for request: Request, context: HubRequestContext) -> HTTPFields {
        let maxAge = max(0, Int(expiresAt.timeIntervalSinceNow))
        let secure = isSecure(request, context: context)
        var fields = HTTPFields()
        fields.append(Self.field("\(AuthenticationMiddleware.cookieName(secure: secure))=\(token); Max-Age=\(maxAge); Path=/", secure: secure))
        // A plain one from before (a hub not yet told it is behind HTTPS) is read second; gone is better.
        if secure { fields.append(Self.field("\(AuthenticationMiddleware.cookieName)=; Max-Age=0; Path=/", secure: secure)) }
        return fields
    }

    func clear(for request: Request, context: HubRequestContext) -> HTTPFields {
        let secure = isSecure(request, context: context)
        var fields = HTTPFields()
        fields.append(Self.field("\(AuthenticationMiddleware.cookieName)=; Max-Age=0; Path=/", secure: secure))
        // A browser takes a `__Host-` cookie, even one that clears it, only with Secure.
        if secure { fields.append(Self.field("\(AuthenticationMiddleware.hostOnlyCookieName)=; Max-Age=0; Path=/", secure: secure)) }
        return fields
    }

    private func isSecure(_ request: Request, context: HubRequestContext) -> Bool {
        secureByConfiguration || (trustedProxies.contains(context.remoteAddress) && ForwardedClaims(request.headers).https)
    }

    /// A Set-Cookie field for one of the hub's cookies (the session's here, an app origin's
    /// and its sign-in state in `AppSignIn`): `start`, the cookie and its own attributes, then
    /// HttpOnly, SameSite=Lax and, when `secure`, Secure.
    static func field(_ start: String, secure: Bool) -> HTTPField {
        HTTPField(name: .setCookie, value: start + "; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : ""))
    }
}
