import EnvHubCore
import Foundation

/// What to run: one project's environment, built from its template.
public struct EnvironmentSpec: Sendable {
    public var projectID: String
    public var owner: UserName
    public var project: ProjectName
    public var template: Template

    public init(projectID: String, owner: UserName, project: ProjectName, template: Template) {
        self.projectID = projectID
        self.owner = owner
        self.project = project
        self.template = template
    }

    /// The gateway prefix the environment is reached under.
    public var basePath: String { "/u/\(owner)/\(project)" }
}

/// One running component, as recorded in the store so that a restarted hub can find it again.
public struct ComponentRecord: Codable, Sendable, Equatable {
    public var name: String
    public var pid: Int32
    /// From /proc: tells the recorded process from a later one that reuses its pid.
    public var startTime: UInt64
    public var port: Int

    public init(name: String, pid: Int32, startTime: UInt64, port: Int) {
        self.name = name
        self.pid = pid
        self.startTime = startTime
        self.port = port
    }
}

/// A running environment: its components and the one the gateway sends traffic to.
public struct EnvironmentRecord: Codable, Sendable, Equatable {
    public var components: [ComponentRecord]
    public var exposed: String

    public init(components: [ComponentRecord], exposed: String) {
        self.components = components
        self.exposed = exposed
    }

    public var exposedPort: Int? { components.first { $0.name == exposed }?.port }
}

/// A step of a start, for progress events.
public enum StartStep: Sendable, Equatable {
    case startingComponent(String)
    case waitingForHealth(String)
    /// What a runtime reports on the way, such as a pod's "pulling image postgres:16".
    case componentStatus(String, String)
    case componentReady(String)
}

/// Why a start failed, with the last lines the components wrote.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public let lastLogLines: [String]

    public init(_ reason: String, lastLogLines: [String] = []) {
        self.reason = reason
        self.lastLogLines = lastLogLines
    }

    public var description: String {
        lastLogLines.isEmpty ? reason : reason + "\nlast output:\n" + lastLogLines.joined(separator: "\n")
    }
}
