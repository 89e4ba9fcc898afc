import EnvHubCore
import Foundation
import Hummingbird

/// Serves the web UI: one HTML shell (`index.html`) for every page path the UI routes with
/// the History API, the modules, styles and icons under `/assets/`, and `/favicon.ico`.
///
/// - Only the page paths listed here answer with the shell, so `/api/…`, `/u/…`, the probes,
///   `/metrics` and `/openapi.json` are never shadowed, and an unknown path stays a JSON 404.
/// - Anonymous visitors to a page other than `/login` and `/signup` are sent to
///   `/login?next=…`, as the gateway does; the login page follows `next` only to a path on
///   this origin.
/// - Every file is revalidated on each use (`Cache-Control: no-cache` + a strong `ETag`,
///   304 when it matches), so a new build's files are used at once and an unchanged file
///   costs one small round trip.
/// - The shell carries a Content-Security-Policy that allows only this origin's scripts,
///   styles, images and connections (no inline script or style), and may not be framed.
struct WebController {
    let assets: WebAssets

    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// What every HTML page the hub writes is sent with (the shell, and the gateway's
    /// `StoppedPage`): the policy above, and no referrer for other origins.
    static let pageSecurityFields: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy, .referrerPolicy: "same-origin",
    ]

    /// The hub's icon, also served on app origins (`AppOriginMiddleware`).
    static let iconPath = "/favicon.ico"
    /// The UI's pages; `**` covers a page's sub-paths (`/projects/alice/web`, `/chat/general`).
    static let pages = ["/", "/login", "/signup", "/projects", "/projects/**", "/chat", "/chat/**", "/profile", "/admin"]
    static let publicPages: Set<String> = ["/login", "/signup"]

    func addRoutes(to router: Router<HubRequestContext>) {
        for page in Self.pages {
            router.get(RouterPath(page)) { request, context in try shell(request, context: context) }
        }
        router.get("/assets/**") { request, context in
            let path = context.parameters.getCatchAll().joined(separator: "/")
            guard let asset = assets[path] else { throw EnvHubError.notFound("no file /assets/\(path)") }
            return Self.response(asset, for: request)
        }
        router.get(RouterPath(Self.iconPath)) { request, _ in
            guard let icon = assets["favicon.svg"] else { throw EnvHubError.notFound("no favicon") }
            return Self.response(icon, for: request)
        }
    }

    func shell(_ request: Request, context: HubRequestContext) throws -> Response {
        let path = request.uri.path
        if context.identity == nil, !Self.publicPages.contains(path) {
            return Gateway.signInFirst(returningTo: path + (request.uri.query.map { "?" + $0 } ?? "")).response
        }
        guard let index = assets["index.html"] else { throw EnvHubError.unavailable("the web UI is missing from this build") }
        return Self.response(index, for: request)
    }

    static func response(_ asset: WebAssets.Asset, for request: Request) -> Response {
        var headers: HTTPFields = [.cacheControl: "no-cache", .eTag: asset.etag, .xContentTypeOptions: "nosniff"]
        if asset.contentType.hasPrefix("text/html") { headers.append(contentsOf: pageSecurityFields) }
        if matches(request.headers[values: .ifNoneMatch], asset.etag) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    /// `If-None-Match` holds `*` or a list of tags, possibly weak (`W/"…"`), which match by value.
    static func matches(_ fields: [String], _ etag: String) -> Bool {
        fields.flatMap { $0.split(separator: ",") }.contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }
}
