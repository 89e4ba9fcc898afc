import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The web UI's files: the shell for the UI's page paths only, assets with their types and
/// validators, no way out of the bundle, and the API's own answers left alone.
@Suite struct WebUITests {
    static let pages = ["/", "/projects", "/projects/admin/web", "/chat", "/chat/general", "/profile", "/admin"]

    @Test func theShellAnswersEveryPagePathWithItsPolicy() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            for page in Self.pages + ["/login", "/signup"] {
                let response = try await hub.request(.get, page, token: token)
                #expect(response.status == .ok, "\(page)")
                #expect(response.headers[.contentType] == "text/html; charset=utf-8", "\(page)")
                #expect(response.headers[.cacheControl] == "no-cache")
                #expect(response.headers[.eTag]?.hasPrefix("\"") == true)
                let policy = response.headers[.contentSecurityPolicy] ?? ""
                #expect(policy.contains("default-src 'self'") && policy.contains("script-src 'self'") && !policy.contains("unsafe"))
                #expect(response.text.contains(#"<script type="module" src="/assets/app.js"></script>"#))
            }
        }
    }

    @Test func anonymousVisitorsAreSentToTheLoginPageWithTheirPath() async throws {
        try await TestHub.run { hub in
            let projects = try await hub.request(.get, "/projects/alice/web?tab=logs")
            #expect(projects.status == .found)
            #expect(projects.headers[.location] == "/login?next=/projects/alice/web?tab%3Dlogs")
            let root = try await hub.request(.get, "/")
            #expect(root.headers[.location] == "/login?next=/")
            let expired = try await hub.request(.get, "/chat", headers: [.cookie: "envhub_session=not.a.token"])
            #expect(expired.status == .found)
            for page in ["/login", "/signup"] {
                #expect(try await hub.request(.get, page).status == .ok)
            }
        }
    }

    @Test(arguments: [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/pages/projects.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
    ])
    func assetsHaveTheirTypesAndRevalidate(_ path: String, _ type: String) async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.get, path)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == type)
            #expect(response.headers[.cacheControl] == "no-cache")
            #expect(response.headers[.xContentTypeOptions] == "nosniff")
            let etag = try #require(response.headers[.eTag])
            let again = try await hub.request(.get, path, headers: [.ifNoneMatch: "\"other\", W/\(etag)"])
            #expect(again.status == .notModified)
            #expect(again.text.isEmpty)
            let changed = try await hub.request(.get, path, headers: [.ifNoneMatch: "\"other\""])
            #expect(changed.status == .ok)
        }
    }

    @Test func theAPIAndOperationsAreNeverShadowed() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            for path in ["/api/nothing", "/api/projects", "/apis", "/projectsx", "/assets", "/u", "/index.html"] {
                let response = try await hub.request(.get, path, token: token)
                #expect(response.status == .notFound, "\(path)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(path)")
            }
            #expect(try await hub.request(.get, "/healthz").object["status"] as? String == "ok")
            #expect(try await hub.request(.get, "/openapi.json").object["openapi"] as? String == "3.1.0")
            #expect(try await hub.request(.get, "/metrics").headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(try await hub.request(.get, "/u/admin/web/").errorCode == "unauthenticated")
            // Only GET: a form posted to a page path is not the shell.
            #expect(try await hub.request(.post, "/login", token: token).status == .notFound)
        }
    }

    @Test func statusTellsTheLoginPageWhetherSignUpIsOpen() async throws {
        for open in [false, true] {
            try await TestHub.run(configure: { $0.openSignup = open }) { hub in
                let status = try await hub.request(.get, "/api/status").object
                #expect(status["openSignup"] as? Bool == open)
            }
        }
    }

    @Test(arguments: [
        "/assets/../Package.swift", "/assets/%2e%2e/%2e%2e/Package.swift", "/assets/..%2f..%2fPackage.swift",
        "/assets/pages/../app.js", "/assets//etc/passwd", "/assets/%2fetc%2fpasswd", "/assets/", "/assets/nothing.js",
        "/assets/web/app.js", "/assets/APP.JS",
    ])
    func pathsOutsideTheUIsFilesFindNothing(_ path: String) async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.get, path)
            #expect(response.status == .notFound, "\(path): \(response.status)")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }
}
