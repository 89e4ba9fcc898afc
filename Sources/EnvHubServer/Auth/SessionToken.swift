import Foundation
import JWTKit

/// The claims of a session token: which session (revocable in the store), whose, until when.
struct SessionToken: JWTPayload {
    var sub: SubjectClaim
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
