import EnvHubCore
import Foundation
import Hummingbird
import NIOCore

/// Who is making a request: set by `AuthenticationMiddleware` from a valid session. A class:
/// the session cache hands the same identity to every request of a session (the gateway's
/// included), and passing it on then costs one reference, not a copy of each of the user's strings.
public final class Identity: Sendable {
    public let user: User
    public let sessionID: String

    init(user: User, sessionID: String) {
        self.user = user
        self.sessionID = sessionID
    }
}

/// The request context of every route.
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    /// The client's address, for X-Forwarded-For.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Request bodies above 1 MiB answer 413 (`EnvHubError.bodyTooLarge`).
    public static let bodyLimit = 1 << 20

    public var maxUploadSize: Int { Self.bodyLimit }

    public var requestDecoder: JSONDecoder { JSON.decoder }

    /// The signed-in user, or a 401.
    public func requireIdentity() throws(EnvHubError) -> Identity {
        guard let identity else { throw .unauthenticated() }
        return identity
    }

    /// The signed-in user, who must be an admin (403 otherwise).
    public func requireAdmin() throws(EnvHubError) -> Identity {
        let identity = try requireIdentity()
        guard identity.user.isAdmin else { throw .forbidden("only admins may do this") }
        return identity
    }
}
