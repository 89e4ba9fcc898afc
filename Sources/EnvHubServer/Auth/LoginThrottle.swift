import EnvHubCore
import EnvHubStore
import Foundation

/// Five failed sign-ins for one user name within five minutes lock that name until the
/// oldest of them leaves the window. Failures live in the store, so every replica agrees.
struct LoginThrottle: Sendable {
    static let maxFailures = 5
    static let window: TimeInterval = 5 * 60

    let store: any LoginFailureStore

    /// Throws 429 with Retry-After while `username` is locked.
    func check(_ username: String, now: Date) async throws {
        let failures = try await store.loginFailures(username: username, since: now.addingTimeInterval(-Self.window))
        guard failures.count >= Self.maxFailures else { return }
        let unlocksAt = failures[failures.count - Self.maxFailures].addingTimeInterval(Self.window)
        let seconds = max(1, Int(unlocksAt.timeIntervalSince(now).rounded(.up)))
        throw EnvHubError.tooManyRequests(
            "too many failed sign-ins for \(username); try again in \(seconds) seconds", retryAfterSeconds: seconds)
    }

    func recordFailure(_ username: String, now: Date) async throws {
        try await store.recordLoginFailure(username: username, at: now)
    }

    func recordSuccess(_ username: String) async throws {
        try await store.clearLoginFailures(username: username)
    }
}
