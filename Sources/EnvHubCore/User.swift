import Foundation

/// What a signed-in person may do: admins see and change everything, users only their own.
public enum Role: String, Codable, Sendable, CaseIterable {
    case admin
    case user
}

/// A person with an account. The password hash never leaves the store module.
public struct User: Sendable, Equatable {
    public var id: String
    public var name: UserName
    public var role: Role
    public var profile: Profile
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, name: UserName, role: Role, profile: Profile = .init(), createdAt: Date, updatedAt: Date) {
        self.id = id
        self.name = name
        self.role = role
        self.profile = profile
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public var isAdmin: Bool { role == .admin }
}

/// The parts of a user that the user edits: shown to others except the email.
public struct Profile: Sendable, Equatable, Codable {
    public static let maxDisplayNameLength = 100
    public static let maxBioLength = 2_000
    public static let maxEmailLength = 254

    public var displayName: String
    public var bio: String
    public var email: String?

    public init(displayName: String = "", bio: String = "", email: String? = nil) {
        self.displayName = displayName
        self.bio = bio
        self.email = email
    }

    /// Checks lengths and the email's shape; throws a 400 naming the field.
    public func validate() throws(EnvHubError) {
        if displayName.count > Self.maxDisplayNameLength {
            throw .invalidField("displayName", "displayName must be at most \(Self.maxDisplayNameLength) characters")
        }
        if bio.count > Self.maxBioLength {
            throw .invalidField("bio", "bio must be at most \(Self.maxBioLength) characters")
        }
        if let email {
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            let plausible = parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
                && !email.contains(where: \.isWhitespace)
            if !plausible || email.count > Self.maxEmailLength {
                throw .invalidField("email", "email must look like name@example.org")
            }
        }
    }
}

/// Rules for passwords, kept in one place for the API and the command line.
public enum PasswordPolicy {
    public static let minLength = 8
    /// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
    public static let maxBytes = 72

    public static func validate(_ password: String, field: String = "password") throws(EnvHubError) {
        if password.count < minLength {
            throw .invalidField(field, "\(field) must be at least \(minLength) characters")
        }
        if password.utf8.count > maxBytes {
            throw .invalidField(field, "\(field) must be at most \(maxBytes) bytes")
        }
    }
}
