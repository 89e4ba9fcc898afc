import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird

/// Five failed sign-ins for one user name from one client address within five minutes lock
/// that name for that address until the oldest of them leaves the window. A stranger's
/// guesses so lock the name for the stranger alone: its owner still signs in from anywhere
/// else (a lock per name alone let anyone keep any account locked, the admin's included).
/// The address is the connection's peer, or, behind trusted proxies, the client they name
/// (`TrustedProxies.clientAddress`); behind a proxy the hub does not trust, every client
/// shares the proxy's address and the lock is per name. Failures live in the store, so every
/// replica agrees.
struct LoginThrottle: Sendable {
    static let maxFailures = 5
    static let window: TimeInterval = 5 * 60

    let store: any LoginFailureStore
    let trustedProxies: TrustedProxies

    /// Who is trying to sign in.
    struct Attempt: Sendable {
        /// Lower-cased, as names are unique regardless of case.
        let username: String
        /// The client's address, empty when it has none (a test without sockets).
        let client: String

        init(username: String, client: String?) {
            self.username = username.lowercased()
            self.client = client ?? ""
        }
    }

    /// A sign-in as `username` by the client that sent `request`.
    func attempt(by username: String, request: Request, context: HubRequestContext) -> Attempt {
        Attempt(
            username: username,
            client: trustedProxies.clientAddress(peer: context.remoteAddress, forwardedFor: request.headers[values: .xForwardedFor]))
    }

    /// Throws 429 with Retry-After while `attempt`'s name is locked for its client.
    func check(_ attempt: Attempt, now: Date) async throws {
        let failures = try await store.loginFailures(
            username: attempt.username, client: attempt.client, since: now.addingTimeInterval(-Self.window))
        guard failures.count >= Self.maxFailures else { return }
        let unlocksAt = failures[failures.count - Self.maxFailures].addingTimeInterval(Self.window)
        let seconds = max(1, Int(unlocksAt.timeIntervalSince(now).rounded(.up)))
        throw EnvHubError.tooManyRequests(
            "too many failed sign-ins for \(attempt.username) from this address; try again in \(seconds) seconds",
            retryAfterSeconds: seconds)
    }

    func recordFailure(_ attempt: Attempt, now: Date) async throws {
        try await store.recordLoginFailure(username: attempt.username, client: attempt.client, at: now)
    }

    func recordSuccess(_ attempt: Attempt) async throws {
        try await store.clearLoginFailures(username: attempt.username, client: attempt.client)
    }
}
