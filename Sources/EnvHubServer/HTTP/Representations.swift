import EnvHubCore
import Foundation

/// A user as the API shows it. The email is included only for the user themself and admins.
struct UserJSON: Encodable {
    let id: String
    let username: String
    let role: Role
    let displayName: String
    let bio: String
    let email: String?
    let createdAt: Date
    let updatedAt: Date

    init(_ user: User, showEmail: Bool) {
        id = user.id
        username = user.name.rawValue
        role = user.role
        displayName = user.profile.displayName
        bio = user.profile.bio
        email = showEmail ? user.profile.email : nil
        createdAt = user.createdAt
        updatedAt = user.updatedAt
    }

    init(_ user: User, for viewer: Identity) {
        self.init(user, showEmail: viewer.user.isAdmin || viewer.user.id == user.id)
    }
}

/// A project as the API shows it.
struct ProjectJSON: Encodable {
    let id: String
    let owner: String
    let name: String
    let template: String
    let description: String
    let state: EnvironmentState
    /// Why the environment failed (or is restarting, or was stopped); absent otherwise.
    let stateReason: String?
    /// When the environment was last used, if ever.
    let lastActivity: Date?
    /// When the idle culler will stop the environment, if it is active and culling is on.
    let cullAt: Date?
    /// Whether the gateway starts the stopped environment when its owner opens it.
    let autoStart: Bool
    let createdAt: Date
    let updatedAt: Date

    init(_ project: Project, idleTimeout: TimeInterval?) {
        id = project.id
        owner = project.owner.rawValue
        name = project.name.rawValue
        template = project.template
        description = project.description
        state = project.state
        stateReason = project.stateReason.isEmpty ? nil : project.stateReason
        lastActivity = project.lastActivity
        cullAt = project.state == .active
            ? idleTimeout.map { project.idleSince.addingTimeInterval($0) } : nil
        autoStart = project.autoStart
        createdAt = project.createdAt
        updatedAt = project.updatedAt
    }
}

/// The answer to a successful sign-in or sign-up; the same token is also set as a cookie.
struct SessionJSON: Encodable {
    let token: String
    let expiresAt: Date
    let user: UserJSON
}

/// A PATCH field that may be absent (leave as is), null (clear) or a value.
enum Patch<Value: Decodable & Sendable>: Sendable {
    case absent
    case null
    case value(Value)
}

extension KeyedDecodingContainer {
    func decodePatch<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Patch<Value> {
        guard contains(key) else { return .absent }
        if try decodeNil(forKey: key) { return .null }
        return .value(try decode(Value.self, forKey: key))
    }
}
