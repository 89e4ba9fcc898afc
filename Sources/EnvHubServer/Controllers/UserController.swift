import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird

/// Accounts and profiles under `/api/users`. Profiles are visible to every signed-in user
/// (without the email); changing one is for its owner and admins.
struct UserController {
    let store: any HubStore
    let hasher: PasswordHasher
    let lifecycle: EnvironmentLifecycle

    struct NewUser: Decodable {
        let username: String
        let password: String
        let admin: Bool?
        let displayName: String?
        let email: String?
    }

    struct ProfileChange: Decodable {
        let displayName: String?
        let bio: String?
        let email: Patch<String>
        let admin: Bool?

        enum CodingKeys: String, CodingKey { case displayName, bio, email, admin }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            displayName = try container.decodeIfPresent(String.self, forKey: .displayName)
            bio = try container.decodeIfPresent(String.self, forKey: .bio)
            email = try container.decodePatch(String.self, forKey: .email)
            admin = try container.decodeIfPresent(Bool.self, forKey: .admin)
        }
    }

    struct PasswordChange: Decodable {
        let currentPassword: String?
        let newPassword: String
    }

    struct UserList: Encodable {
        let users: [UserJSON]
    }

    func addRoutes(to routes: HubRoutes) {
        routes.get("/api/users", list)
        routes.post("/api/users", create)
        routes.get("/api/users/{user}", show)
        routes.patch("/api/users/{user}", update)
        routes.delete("/api/users/{user}", delete)
        routes.post("/api/users/{user}/password", changePassword)
    }

    @Sendable func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireAdmin()
        return try .json(UserList(users: try await store.users().map { UserJSON($0, showEmail: true) }))
    }

    @Sendable func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireAdmin()
        let body = try await JSON.decode(NewUser.self, from: request, context: context)
        let user = try await AccountFactory(store: store, hasher: hasher).create(
            username: body.username, password: body.password, role: body.admin == true ? .admin : .user,
            displayName: body.displayName, email: body.email)
        return try .json(UserJSON(user, showEmail: true), status: .created)
    }

    @Sendable func show(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let user = try await existingUser(context)
        return try .json(UserJSON(user, for: identity))
    }

    @Sendable func update(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let user = try await existingUser(context)
        try Self.requireSelfOrAdmin(identity, user)
        let change = try await JSON.decode(ProfileChange.self, from: request, context: context)
        var profile = user.profile
        if let displayName = change.displayName { profile.displayName = displayName }
        if let bio = change.bio { profile.bio = bio }
        switch change.email {
        case .absent: break
        case .null: profile.email = nil
        case .value(let email): profile.email = email.isEmpty ? nil : email
        }
        try profile.validate()
        var role = user.role
        if let admin = change.admin, admin != user.isAdmin {
            guard identity.user.isAdmin else { throw EnvHubError.forbidden("only admins may change roles") }
            role = admin ? .admin : .user
            if user.role == .admin, role != .admin { try await requireAnotherAdmin(than: user) }
        }
        guard let updated = try await store.updateUser(named: user.name, profile: profile, role: role, at: Date()) else {
            throw EnvHubError.notFound("no user \(user.name)")
        }
        return try .json(UserJSON(updated, for: identity))
    }

    @Sendable func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        _ = try context.requireAdmin()
        let user = try await existingUser(context)
        if user.isAdmin { try await requireAnotherAdmin(than: user) }
        // The store drops the user's projects with the user: what runs for them goes first.
        try await lifecycle.deleteProjects(of: user.name)
        guard try await store.deleteUser(named: user.name) else { throw EnvHubError.notFound("no user \(user.name)") }
        return .noContent()
    }

    /// Users change their own password by giving the current one; admins may set anyone's.
    /// Every other session of the user is revoked.
    @Sendable func changePassword(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let user = try await existingUser(context)
        try Self.requireSelfOrAdmin(identity, user)
        let body = try await JSON.decode(PasswordChange.self, from: request, context: context)
        try PasswordPolicy.validate(body.newPassword, field: "newPassword")
        let isSelf = identity.user.id == user.id
        if isSelf || !identity.user.isAdmin {
            guard let current = body.currentPassword else {
                throw EnvHubError.invalidField("currentPassword", "currentPassword is required to change your own password")
            }
            guard let credentials = try await store.credentials(of: user.name),
                  try await hasher.verify(current, hash: credentials.passwordHash)
            else { throw EnvHubError(code: "wrong_password", status: 403, message: "currentPassword is wrong") }
        }
        let changed = try await store.changePassword(
            of: user.name, passwordHash: try await hasher.hash(body.newPassword),
            keeping: isSelf ? identity.sessionID : nil, at: Date())
        guard changed else { throw EnvHubError.notFound("no user \(user.name)") }
        return .noContent()
    }

    private func existingUser(_ context: HubRequestContext) async throws -> User {
        let raw = try context.pathParameter("user")
        guard let name = UserName(rawValue: raw), let user = try await store.user(named: name) else {
            throw EnvHubError.notFound("no user \(raw)")
        }
        return user
    }

    private static func requireSelfOrAdmin(_ identity: Identity, _ user: User) throws(EnvHubError) {
        guard identity.user.isAdmin || identity.user.id == user.id else {
            throw .forbidden("you may change only your own account")
        }
    }

    /// The hub must keep at least one admin.
    private func requireAnotherAdmin(than user: User) async throws {
        let admins = try await store.users().filter { $0.isAdmin && $0.id != user.id }
        if admins.isEmpty { throw EnvHubError.conflict("\(user.name) is the last admin; make another admin first") }
    }
}
