import EnvHubCore
import EnvHubStore
import Foundation

/// The one way accounts are created, by sign-up, by an admin or by `envhub user add`: the
/// same checks of name, password and profile, and the same hashing.
public struct AccountFactory: Sendable {
    let store: any UserStore
    let hasher: PasswordHasher

    init(store: any UserStore, hasher: PasswordHasher) {
        self.store = store
        self.hasher = hasher
    }

    /// With the production bcrypt cost.
    public init(store: any UserStore) {
        self.init(store: store, hasher: PasswordHasher(cost: AppConfig().bcryptCost))
    }

    public func create(username: String, password: String, role: Role, displayName: String?, email: String?) async throws -> User {
        let name = try UserName(validating: username, field: "username")
        try PasswordPolicy.validate(password)
        // An empty email means none, as in PATCH /api/users/{user}.
        let profile = Profile(displayName: displayName ?? "", email: email?.isEmpty == false ? email : nil)
        try profile.validate()
        return try await store.createUser(
            name: name, role: role, passwordHash: try await hasher.hash(password), profile: profile, at: Date())
    }
}
