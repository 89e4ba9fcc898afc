import EnvHubCore
import Foundation

/// Which environment: enough to find what runs for a project, even once its template is gone.
public struct EnvironmentIdentity: Sendable, Hashable {
    public var projectID: String
    public var owner: UserName
    public var project: ProjectName

    public init(projectID: String, owner: UserName, project: ProjectName) {
        self.projectID = projectID
        self.owner = owner
        self.project = project
    }
}

/// What to run: one project's environment, built from its template.
public struct EnvironmentSpec: Sendable {
    public var projectID: String
    public var owner: UserName
    public var project: ProjectName
    public var template: Template
    /// The project's `{{secret}}`, which the hub keeps (see `ProjectSecrets` in EnvHubServer).
    public var secret: String

    public init(projectID: String, owner: UserName, project: ProjectName, template: Template, secret: String) {
        self.projectID = projectID
        self.owner = owner
        self.project = project
        self.template = template
        self.secret = secret
    }

    public var identity: EnvironmentIdentity { EnvironmentIdentity(projectID: projectID, owner: owner, project: project) }

    /// The gateway prefix the environment is reached under.
    public var basePath: String { "/u/\(owner)/\(project)" }
}

/// Where a component answers: a loopback port for local processes, a Service's cluster
/// name and port on Kubernetes.
public struct Endpoint: Codable, Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, as in a Host field.
    public var description: String { "\(host):\(port)" }
}

/// One running component, as recorded in the store so that a restarted hub can find it again.
public struct ComponentRecord: Codable, Sendable, Equatable {
    public var name: String
    /// The local process, for the local runtime; nil on Kubernetes.
    public var pid: Int32?
    /// From /proc: tells the recorded process from a later one that reuses its pid.
    public var startTime: UInt64?
    /// Nil for a local process, which answers on 127.0.0.1.
    public var host: String?
    public var port: Int

    public init(name: String, pid: Int32? = nil, startTime: UInt64? = nil, host: String? = nil, port: Int) {
        self.name = name
        self.pid = pid
        self.startTime = startTime
        self.host = host
        self.port = port
    }

    public var endpoint: Endpoint { Endpoint(host: host ?? "127.0.0.1", port: port) }
}

/// A running environment: its components and the one the gateway sends traffic to.
public struct EnvironmentRecord: Codable, Sendable, Equatable {
    public var components: [ComponentRecord]
    public var exposed: String

    public init(components: [ComponentRecord], exposed: String) {
        self.components = components
        self.exposed = exposed
    }

    public var exposedEndpoint: Endpoint? { components.first { $0.name == exposed }?.endpoint }
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

/// Runs environments: `LocalRuntime` (processes on this machine) or `KubernetesRuntime`.
/// `EnvironmentLifecycle` decides when; a runtime only does what it is told and reports what
/// runs.
public protocol EnvironmentRuntime: Sendable {
    /// For `/api/status`: `local` or `kubernetes`.
    var kind: String { get }
    /// For `/api/status` and the log: "local processes under …", "Kubernetes at …".
    var summary: String { get }

    /// Starts every component and returns once each is ready, within the template's start
    /// timeout; on failure nothing is left running and the error says why. `spawned` hears
    /// the record as soon as it is known, before the readiness checks, so that the caller can
    /// store it and a hub that dies meanwhile leaves nothing unrecorded.
    func start(
        _ spec: EnvironmentSpec, progress: @escaping @Sendable (StartStep) -> Void,
        spawned: @escaping @Sendable (EnvironmentRecord) async -> Void
    ) async throws -> EnvironmentRecord

    /// Stops what runs; what the environment keeps (volumes, its directory) stays.
    func stop(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async throws

    /// Stops what runs and removes everything the environment had, volumes included.
    func delete(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async throws

    /// Looks at an environment recorded as active and puts back what can be put back (on
    /// Kubernetes, objects deleted by hand); `.crashed` asks the caller to restart it.
    func check(_ spec: EnvironmentSpec, record: EnvironmentRecord) async -> EnvironmentCheck

    /// Removes what runs for projects that no longer exist (`exists(user, project)` says
    /// which do); returns what it removed.
    func removeOrphans(exists: @Sendable (_ user: String, _ project: String) -> Bool) async throws -> [String]

    /// The last `count` lines each component wrote, each prefixed with `[component]`.
    func lastLines(_ environment: EnvironmentIdentity, count: Int) async -> [String]

    /// Lines the components write from now on, prefixed like `lastLines`, until the caller stops listening.
    func followLogs(_ environment: EnvironmentIdentity) -> AsyncStream<String>
}

/// What `EnvironmentRuntime.check` found.
public enum EnvironmentCheck: Sendable, Equatable {
    case running
    /// Put back what had gone missing: the kinds and names it created.
    case repaired([String])
    /// Components that are no longer running, with why when the runtime knows.
    case crashed(String)
}
