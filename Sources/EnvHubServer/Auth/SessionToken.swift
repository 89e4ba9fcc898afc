import Foundation
import JWTKit

/// The claims of a session token: which session (revocable in the store), whose, until when.
/// A token with `app` is good only on that user's app origin (`AppOrigins`): the cookie there
/// holds one, and the hub's API refuses it.
struct SessionToken: JWTPayload {
    var sub: SubjectClaim
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    /// The user whose app origin the token is for; nil for the hub's own tokens.
    var app: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
