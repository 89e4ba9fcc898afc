import EnvHubCore
import EnvHubStore
import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// Issues, checks and revokes sessions. A session is a row in the store; the client holds a
/// JWT (HS256, key shared by all replicas through the store) that names it. A checked token
/// is remembered, so the next request with it needs neither the signature check nor the
/// store; the store's change feed drops what it remembers of a user on every change to
/// them (revocation, password, role, deletion) on any replica, and nothing is remembered
/// while the feed is not live.
///
/// A token names its audience: the hub's (no `app` claim), or one user's app origin
/// (`AppOrigins`, `AppTicket`). Each is taken only where it belongs.
final class SessionAuthority: Sendable {
    static let signingKeySetting = "session_signing_key"
    static let ticketKeySetting = "app_ticket_signing_key"
    private static let maxCachedTokens = 100_000

    let store: any SessionStore & SettingsStore
    let lifetime: TimeInterval
    private let cacheLifetime: TimeInterval
    private let feed: ChangeFeed
    private let keys = JWTKeyCollection()
    /// Signs and checks app tickets (`AppTicket`), with a key of their own: a ticket is never a
    /// session token, nor a session token a ticket.
    let ticketKeys = JWTKeyCollection()
    /// Remembered tokens.
    private let cache = NIOLockedValueBox([String: CachedIdentity]())
    private let generation = CacheGeneration()

    /// A class, not a struct: a request's look-up then copies one reference, not every
    /// string of a user.
    final class CachedIdentity: Sendable {
        let identity: Identity
        let expiresAt: Date
        let checkedAt: Date
        /// The token's `app` claim.
        let app: String?

        init(identity: Identity, expiresAt: Date, checkedAt: Date, app: String?) {
            self.identity = identity
            self.expiresAt = expiresAt
            self.checkedAt = checkedAt
            self.app = app
        }
    }

    init(store: any SessionStore & SettingsStore, feed: ChangeFeed, lifetime: Duration, cacheLifetime: Duration) {
        self.store = store
        self.feed = feed
        self.lifetime = Self.seconds(lifetime)
        self.cacheLifetime = Self.seconds(cacheLifetime)
        feed.subscribe { [cache, generation] change in
            cache.withLockedValue { entries in
                switch change {
                case .user(let id):
                    generation.advance()
                    entries = entries.filter { $0.value.identity.user.id != id }
                case .everything:
                    generation.advance()
                    entries.removeAll()
                case .projects, .activity, .message: break
                }
            }
        }
    }

    /// Loads the signing keys from the store, creating them on the very first start.
    func loadSigningKeys() async throws {
        for (setting, collection) in [(Self.signingKeySetting, keys), (Self.ticketKeySetting, ticketKeys)] {
            var bytes = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
            let secret = try await store.settingInsertingIfAbsent(setting, value: Data(bytes).base64EncodedString())
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
    }

    /// Starts a session for `user` and returns its token and expiry.
    func issue(for user: User, now: Date = Date()) async throws -> (token: String, session: Session) {
        let session = Session(
            id: Self.randomID(), userID: user.id, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try await store.createSession(session)
        return (try await token(for: session, app: nil, now: now), session)
    }

    /// A token for `session`, for the hub or (`app`) for one user's app origin. It lasts as long
    /// as the session, and ends with it.
    func token(for session: Session, app: UserName?, now: Date = Date()) async throws -> String {
        try await keys.sign(SessionToken(
            sub: .init(value: session.userID), sid: session.id, iat: .init(value: now), exp: .init(value: session.expiresAt),
            app: app?.rawValue))
    }

    /// The identity a token stands for, or nil when it is malformed, forged, expired, revoked, or
    /// not for here. `appOrigin`: the user whose app origin the request came to (which takes
    /// that origin's tokens and the hub's), nil on the hub's (which takes the hub's alone).
    func identity(for token: String, appOrigin: UserName? = nil, now: Date = Date()) async -> Identity? {
        if let identity = cachedIdentity(for: token, appOrigin: appOrigin, now: now) { return identity }
        let generation = self.generation.current
        let live = feed.isLive
        guard let claims = try? await keys.verify(token, as: SessionToken.self),
              Self.belongs(claims.app, at: appOrigin),
              let (session, user) = try? await store.session(id: claims.sid),
              session.isValid(at: now), session.userID == claims.sub.value
        else {
            cache.withLockedValue { _ = $0.removeValue(forKey: token) }
            return nil
        }
        let identity = Identity(user: user, sessionID: session.id)
        // Remember it only if the feed was live throughout and nothing changed meanwhile.
        if live && feed.isLive {
            cache.withLockedValue { entries in
                guard self.generation.current == generation else { return }
                if entries.count >= Self.maxCachedTokens { entries.removeAll(keepingCapacity: true) }
                entries[token] = CachedIdentity(identity: identity, expiresAt: session.expiresAt, checkedAt: now, app: claims.app)
            }
        }
        return identity
    }

    /// The identity of a token checked recently, or nil when it must be checked (again).
    func cachedIdentity(for token: String, appOrigin: UserName? = nil, now: Date = Date()) -> Identity? {
        var recalled: Recalled?
        return cachedIdentity(for: token, appOrigin: appOrigin, now: now, recalled: &recalled)
    }

    /// What a connection keeps of its last request's token (`Gateway.Recall`).
    typealias Recalled = EnvHubServer.Recalled<String, CachedIdentity>

    /// `cachedIdentity(for:now:)`, taken from `recalled` without the cache's lock when it is
    /// the same token, still fresh, and nothing changed since; `recalled` is what was found.
    func cachedIdentity(for token: String, appOrigin: UserName? = nil, now: Date = Date(), recalled: inout Recalled?) -> Identity? {
        guard let cached = generation.recall(token, &recalled, usable: { isFresh($0, at: now) }, lookUp: {
            cache.withLockedValue { entries in entries[token].map { ($0, generation.current) } }
        }) else { return nil }
        return Self.belongs(cached.app, at: appOrigin) ? cached.identity : nil
    }

    /// A token for `app`'s origin is taken there alone; the hub's tokens (scripts send them as
    /// Bearer tokens) everywhere.
    private static func belongs(_ app: String?, at appOrigin: UserName?) -> Bool {
        app == nil || app == appOrigin?.rawValue
    }

    /// Usable without a check: the session has not expired, and it was checked within `cacheLifetime`.
    private func isFresh(_ cached: CachedIdentity, at now: Date) -> Bool {
        cached.expiresAt > now && now.timeIntervalSince(cached.checkedAt) < cacheLifetime
    }

    func revoke(sessionID: String, now: Date = Date()) async throws {
        try await store.revokeSession(id: sessionID, at: now)
    }

    private static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }
}
