import EnvHubCore
import Foundation

/// Users' apps on origins of their own, apart from the hub's (`--apps-url`): each user's apps
/// at `{scheme}://{user}.{apps host}[:port]/u/{user}/{project}/…`, as JupyterHub's
/// `subdomain_host` does. The hub's session cookie is then never sent to an app's origin, so an
/// app's page cannot act with the session of whoever views it, and one user's app cannot read
/// another's pages.
///
/// Browsers sign in to an app origin through the hub (`AppSignIn`): the app origin sends them
/// to `{public URL}/api/auth/app-ticket`, which sends them back with a one-minute ticket that
/// only the browser holding the matching state cookie can exchange for the app origin's own
/// cookie. The path stays `/u/{user}/{project}/`, so apps see the same prefix either way.
public struct AppOrigins: Sendable, Equatable {
    /// The hub's own origin, `https://hub.example.com`: where app origins send browsers to sign in
    /// and to see a stopped project.
    public let hubOrigin: String
    public let scheme: String
    /// `apps.example.com`, lower-cased: apps live on its subdomains.
    public let domain: String
    /// `:8443`, or "" for the scheme's default port.
    let portSuffix: String

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// `publicURL`: where browsers reach the hub; `appsURL`: the domain whose subdomains serve
    /// apps (a wildcard DNS name and certificate must cover them). Both `http` or `https` with
    /// nothing after the host and port.
    public init(publicURL: String, appsURL: String) throws {
        let hub = try Self.origin(publicURL, "the public URL")
        let apps = try Self.origin(appsURL, "the apps URL")
        // A hub at `alice.apps.example.com` would share alice's app origin.
        let label = hub.host.hasSuffix("." + apps.host) ? hub.host.dropLast(apps.host.count + 1) : nil
        if hub.host == apps.host || label.map({ !$0.contains(".") }) == true {
            throw Invalid(description: "the hub's host \(hub.host) must not be the apps URL's host or a subdomain of it that names a user")
        }
        hubOrigin = hub.origin
        scheme = apps.scheme
        domain = apps.host
        portSuffix = apps.port.map { ":\($0)" } ?? ""
    }

    /// Whose apps a request's Host names (`alice.apps.example.com[:port]` → alice), or nil for
    /// any other host (the hub's, an address). The port is not compared: a proxy may listen on
    /// another port than the hub.
    func owner(ofHost host: String?) -> UserName? {
        guard let host, host.utf8.count > domain.utf8.count + 1 else { return nil }
        let name = host.utf8.lastIndex(of: UInt8(ascii: ":")).flatMap { colon in
            host.utf8[host.utf8.index(after: colon)...].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
                ? Substring(host.utf8[..<colon]) : nil
        } ?? Substring(host)
        let lowered = name.lowercased()
        guard lowered.hasSuffix("." + domain) else { return nil }
        return UserName(rawValue: String(lowered.dropLast(domain.count + 1)))
    }

    /// `https://alice.apps.example.com`
    func origin(of owner: UserName) -> String { "\(scheme)://\(owner.rawValue).\(domain)\(portSuffix)" }

    /// `https://apps.example.com`: the apps URL as given, without a default port.
    public var appsURL: String { "\(scheme)://\(domain)\(portSuffix)" }

    /// App origins' cookies are Secure when they are served over HTTPS.
    var secure: Bool { scheme == "https" }

    private static func origin(_ raw: String, _ what: String) throws -> (origin: String, scheme: String, host: String, port: Int?) {
        guard let url = URLComponents(string: raw), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty, url.user == nil, url.password == nil,
              url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil
        else {
            throw Invalid(description: "\(what) '\(raw)' must be http:// or https:// and a host, with an optional port and nothing after them")
        }
        let defaultPort = scheme == "https" ? 443 : 80
        let port = url.port.flatMap { $0 == defaultPort ? nil : $0 }
        return ("\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")", scheme, host, port)
    }
}
