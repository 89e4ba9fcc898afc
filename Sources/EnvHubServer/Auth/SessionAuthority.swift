import EnvHubCore
import EnvHubStore
import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// Issues, checks and revokes sessions. A session is a row in the store; the client holds a
/// JWT (HS256, key shared by all replicas through the store) that names it. Checking a token
/// verifies the signature and expiry, then the session row, cached for a few seconds.
final class SessionAuthority: Sendable {
    static let signingKeySetting = "session_signing_key"

    let store: any SessionStore & SettingsStore
    let lifetime: TimeInterval
    private let cacheLifetime: TimeInterval
    private let keys = JWTKeyCollection()
    private let cache = NIOLockedValueBox<[String: CachedSession]>([:])

    private struct CachedSession {
        let identity: Identity
        let expiresAt: Date
        let checkedAt: Date
    }

    init(store: any SessionStore & SettingsStore, lifetime: Duration, cacheLifetime: Duration) {
        self.store = store
        self.lifetime = TimeInterval(lifetime.components.seconds)
        self.cacheLifetime = TimeInterval(cacheLifetime.components.seconds)
            + TimeInterval(cacheLifetime.components.attoseconds) / 1e18
    }

    /// Loads the signing key from the store, creating it on the very first start.
    func loadSigningKey() async throws {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        let fresh = Data(bytes).base64EncodedString()
        let secret = try await store.settingInsertingIfAbsent(Self.signingKeySetting, value: fresh)
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    /// Starts a session for `user` and returns its token and expiry.
    func issue(for user: User, now: Date = Date()) async throws -> (token: String, session: Session) {
        let session = Session(
            id: Self.randomID(), userID: user.id, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try await store.createSession(session)
        let claims = SessionToken(
            sub: .init(value: user.id), sid: session.id, iat: .init(value: now), exp: .init(value: session.expiresAt))
        return (try await keys.sign(claims), session)
    }

    /// The identity a token stands for, or nil when it is malformed, forged, expired or revoked.
    func identity(for token: String, now: Date = Date()) async -> Identity? {
        guard let claims = try? await keys.verify(token, as: SessionToken.self) else { return nil }
        if let cached = cache.withLockedValue({ $0[claims.sid] }),
           now.timeIntervalSince(cached.checkedAt) < cacheLifetime, cached.expiresAt > now {
            return cached.identity
        }
        guard let (session, user) = try? await store.session(id: claims.sid),
              session.isValid(at: now), session.userID == claims.sub.value
        else {
            cache.withLockedValue { _ = $0.removeValue(forKey: claims.sid) }
            return nil
        }
        let identity = Identity(user: user, sessionID: session.id)
        cache.withLockedValue { entries in
            if entries.count > 10_000 { entries.removeAll(keepingCapacity: true) }
            entries[session.id] = CachedSession(identity: identity, expiresAt: session.expiresAt, checkedAt: now)
        }
        return identity
    }

    func revoke(sessionID: String, now: Date = Date()) async throws {
        try await store.revokeSession(id: sessionID, at: now)
        forget(sessionID: sessionID)
    }

    /// Drops cached sessions so that a change (revocation, role, deletion) is seen at once here.
    func forget(sessionID: String) { cache.withLockedValue { _ = $0.removeValue(forKey: sessionID) } }
    func forget(userID: String) { cache.withLockedValue { $0 = $0.filter { $0.value.identity.user.id != userID } } }

    private static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
    }
}
