import EnvHubCore
import HTTPTypes
import NIOCore

extension Gateway {
    /// Where a WebSocket upgrade to `/u/{user}/{project}/…` goes: the same rules as HTTP
    /// (`answer`). Nil for anything the router must answer instead (401, 404, 503, a redirect).
    func tunnelTarget(_ head: HTTPRequest, remoteAddress: SocketAddress?) async -> TunnelTarget? {
        guard Self.claims(head), case .forward(let target) = await answer(Request(head), remoteAddress: remoteAddress) else {
            return nil
        }
        let activity = activity.common
        let projectID = target.projectID
        return TunnelTarget(
            host: target.upstream.host, port: target.upstream.port, head: target.forwardedHead(head),
            answer: { target.clientResponse($0) },
            opened: { activity.opened(projectID) }, closed: { activity.closed(projectID) })
    }
}
