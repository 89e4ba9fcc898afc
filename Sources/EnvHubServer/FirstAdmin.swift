import EnvHubCore
import EnvHubStore
import Foundation

/// Makes sure a new hub has an admin: on a first start with no users it creates `admin` with
/// the configured password or a generated one, announced once. No default password exists.
enum FirstAdmin {
    static let name = UserName(unchecked: "admin")

    static func ensure(store: any UserStore, hasher: PasswordHasher, password: String?, announce: (String) -> Void) async throws {
        guard try await store.countUsers() == 0 else { return }
        let chosen = password ?? generatedPassword()
        try PasswordPolicy.validate(chosen, field: "ENVHUB_ADMIN_PASSWORD")
        do {
            _ = try await store.createUser(
                name: name, role: .admin, passwordHash: try await hasher.hash(chosen), profile: Profile(displayName: "Administrator"),
                at: Date())
        } catch let error as EnvHubError where error.status == 409 {
            return  // Another replica created it first.
        }
        if password == nil {
            announce("""
                envhub: created the first admin. Sign in at the web UI with
                    user:     admin
                    password: \(chosen)
                This password is shown only once; change it after signing in.
                """)
        } else {
            announce("envhub: created the first admin 'admin' with the password from ENVHUB_ADMIN_PASSWORD.")
        }
    }

    /// 20 characters from an alphabet without look-alikes: about 115 bits.
    static func generatedPassword() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
