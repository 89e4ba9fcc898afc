import Foundation

/// A user's project: a named instance of a template whose environment can be started and stopped.
public struct Project: Sendable, Equatable {
    public static let maxDescriptionLength = 2_000

    public var id: String
    public var ownerID: String
    public var owner: UserName
    public var name: ProjectName
    public var template: String
    public var description: String
    public var state: EnvironmentState
    /// Why the environment failed; empty otherwise.
    public var stateReason: String
    /// When the environment was last used (API or gateway traffic), if ever.
    public var lastActivity: Date?
    /// Whether the gateway starts the stopped environment when its owner opens it.
    public var autoStart: Bool
    public var createdAt: Date
    public var updatedAt: Date

    /// Where the idle clock starts: the last use, or the last change (becoming active, say)
    /// when that came later, so that a start slower than the idle timeout gets a whole
    /// timeout once it is done.
    public var idleSince: Date { max(lastActivity ?? .distantPast, updatedAt) }

    public init(
        id: String, ownerID: String, owner: UserName, name: ProjectName, template: String,
        description: String, state: EnvironmentState, stateReason: String = "", autoStart: Bool = true,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.ownerID = ownerID
        self.owner = owner
        self.name = name
        self.template = template
        self.description = description
        self.state = state
        self.stateReason = stateReason
        self.lastActivity = nil
        self.autoStart = autoStart
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static func validate(description: String) throws(EnvHubError) {
        if description.count > maxDescriptionLength {
            throw .invalidField("description", "description must be at most \(maxDescriptionLength) characters")
        }
    }
}

/// Where a project's environment is in its life. Every project starts `inactive`.
public enum EnvironmentState: String, Codable, Sendable, CaseIterable {
    case inactive
    case starting
    case active
    case stopping
    case failed
    case deleting

    /// The states this one may move to; anything else is a conflict. The one table of the
    /// lifecycle: every move the hub records is checked against it.
    public var successors: Set<EnvironmentState> {
        switch self {
        case .inactive: [.starting]
        case .starting: [.active, .failed, .stopping, .deleting]
        // → starting: restarted after a crash.
        case .active: [.stopping, .failed, .deleting, .starting]
        case .stopping: [.inactive, .failed, .deleting]
        case .failed: [.starting, .stopping]
        // The project is removed at the end; an inactive or failed one is removed at once.
        case .deleting: []
        }
    }

    public func canMove(to next: EnvironmentState) -> Bool { successors.contains(next) }
}
