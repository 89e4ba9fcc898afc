import Foundation
import HummingbirdBcrypt
import NIOPosix

/// bcrypt, run on the thread pool so that its deliberate slowness never blocks an event loop.
struct PasswordHasher: Sendable {
    let cost: UInt8

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash to check against when the user does not exist, so that the answer takes as
    /// long as for a real user and does not reveal which names exist.
    func makeDecoyHash() async throws -> String { try await hash(UUID().uuidString) }
}
