import EnvHubCore
import Foundation
import JWTKit

/// What carries a signed-in browser from the hub to a user's app origin (`AppOrigins`): good
/// for a minute, for one app origin, and only with the state cookie that origin set in the
/// same browser before sending it to the hub (`AppSignIn`) (so a ticket read off a URL is of no use
/// elsewhere). Signed with a key of its own (`SessionAuthority.ticketKeys`).
struct AppTicket: JWTPayload {
    static let lifetime: TimeInterval = 60

    var sub: SubjectClaim
    var sid: String
    var app: String
    var state: String
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

extension SessionAuthority {
    /// A ticket to `app`'s origin for the session `identity` signed in with.
    func ticket(for identity: Identity, app: UserName, state: String, now: Date = Date()) async throws -> String {
        try await ticketKeys.sign(AppTicket(
            sub: .init(value: identity.user.id), sid: identity.sessionID, app: app.rawValue, state: state,
            exp: .init(value: now.addingTimeInterval(AppTicket.lifetime))))
    }

    /// The token for `app`'s origin that `ticket` is good for, with its expiry and the state it
    /// was for; nil when the ticket is forged, expired, for another origin, for a state not
    /// among `states` (those of the browser's state cookies), or its session has ended.
    func appToken(
        redeeming ticket: String, app: UserName, states: Set<Substring>, now: Date = Date()
    ) async -> (token: String, expiresAt: Date, state: String)? {
        guard let claims = try? await ticketKeys.verify(ticket, as: AppTicket.self),
              claims.app == app.rawValue, states.contains(Substring(claims.state)),
              let (session, _) = try? await store.session(id: claims.sid),
              session.isValid(at: now), session.userID == claims.sub.value,
              let token = try? await token(for: session, app: app, now: now)
        else { return nil }
        return (token, session.expiresAt, claims.state)
    }
}
