import EnvHubStore
import Foundation
import Logging
import ServiceLifecycle

/// Removes expired sessions and login failures older than the throttling window, so that
/// neither table grows without bound. Runs every `interval` until graceful shutdown.
struct SessionSweeper: Service {
    let store: any SessionStore & LoginFailureStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while true {
            // A graceful shutdown or cancellation interrupts the wait and ends the loop quietly.
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: interval) })) != nil else { return }
            do {
                try await sweep(now: Date())
            } catch {
                logger.warning("sweeping expired sessions failed", metadata: ["error": "\(error)"])
            }
        }
    }

    func sweep(now: Date) async throws {
        let sessions = try await store.deleteSessions(expiredBefore: now)
        let failures = try await store.deleteLoginFailures(before: now.addingTimeInterval(-LoginThrottle.window))
        if sessions + failures > 0 {
            logger.debug("swept", metadata: ["sessions": "\(sessions)", "login_failures": "\(failures)"])
        }
    }
}
