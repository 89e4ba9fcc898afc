import EnvHubCore
import HTTPTypes
import NIOCore

extension Gateway {
    /// Where a WebSocket upgrade to `/u/{user}/{project}/…` goes: the same rules as HTTP
    /// (session, owner or admin, active environment, prefix handling, forwarded headers). Nil
    /// for anything the ordinary route must answer instead (401, 404, 503, a redirect).
    func tunnelTarget(_ head: HTTPRequest, remoteAddress: SocketAddress?) async -> TunnelTarget? {
        guard let path = head.path, path.hasPrefix("/u/") else { return nil }
        let (bare, query) = path.firstIndex(of: "?").map { (String(path[..<$0]), String(path[$0...])) } ?? (path, "")
        guard let address = Address(path: bare), !address.rest.isEmpty,
              let token = AuthenticationMiddleware.token(in: head.headerFields),
              let identity = await sessions.identity(for: token),
              let route = try? await visibleRoute(address, for: identity.user),
              route.project.state == .active, let port = route.port, let template = route.template
        else { return nil }
        var forwarded = head
        forwarded.path = (template.keepPrefix ? address.prefix + address.rest : address.rest) + query
        forwarded.authority = "127.0.0.1:\(port)"
        forwarded.headerFields = ForwardedHeaders.request(
            head.headerFields, host: head.authority, clientAddress: remoteAddress?.ipAddress, prefix: address.prefix,
            sessionCookie: AuthenticationMiddleware.cookieName, keepUpgrade: true)
        let projectID = route.project.id
        let activity = activity
        activity.touch(projectID)
        return TunnelTarget(
            host: "127.0.0.1", port: port, head: forwarded, onActivity: { activity.touch(projectID) },
            keepAliveInterval: openSocketUseInterval)
    }
}
