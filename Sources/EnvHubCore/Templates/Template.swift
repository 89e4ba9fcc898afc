/// A recipe for an environment: one or more components, one of them exposed through the gateway.
/// One format serves both runtimes: each component says how to run locally (a command) and on
/// Kubernetes (an image and args). See `docs/templates.md` for the YAML format.
public struct Template: Sendable, Equatable, Codable {
    public var name: String
    public var title: String
    public var description: String
    /// The component the gateway sends `/u/{user}/{project}/…` to.
    public var expose: String
    /// Send the gateway prefix on to the app instead of stripping it.
    public var keepPrefix: Bool
    /// For agent templates: the path of the exposed component that takes messages and answers with SSE.
    public var messagePath: String?
    /// Where the gateway redirects `/u/{user}/{project}/` (with `{{user}}` and `{{project}}`
    /// filled in), for apps whose front page is elsewhere, such as noVNC's `vnc.html`.
    public var entryPath: String?
    /// Seconds a component has to answer its health path before the start fails.
    public var startTimeoutSeconds: Int
    public var components: [Component]

    public init(
        name: String, title: String, description: String, expose: String, keepPrefix: Bool = false,
        messagePath: String? = nil, entryPath: String? = nil, startTimeoutSeconds: Int = 60, components: [Component]
    ) {
        self.name = name
        self.title = title
        self.description = description
        self.expose = expose
        self.keepPrefix = keepPrefix
        self.messagePath = messagePath
        self.entryPath = entryPath
        self.startTimeoutSeconds = startTimeoutSeconds
        self.components = components
    }

    public var exposedComponent: Component? { components.first { $0.name == expose } }
}

/// One process (locally) or one Deployment/StatefulSet (on Kubernetes) of an environment.
public struct Component: Sendable, Equatable, Codable {
    public var name: String
    /// argv for the local runtime; `{{envhub}}` stands for the running envhub binary.
    public var command: [String]
    public var image: String
    public var args: [String]
    public var port: Int
    /// How envhub (and Kubernetes) tell that the component is ready.
    public var health: HealthCheck
    /// Extra environment; values may use the placeholders of `Placeholders`.
    public var env: [String: String]
    public var resources: Resources
    public var replicas: Int
    public var autoscale: Autoscale?
    public var volume: Volume?

    public init(
        name: String, command: [String], image: String, args: [String] = [], port: Int, health: HealthCheck = .http(path: "/health"),
        env: [String: String] = [:], resources: Resources = .init(), replicas: Int = 1,
        autoscale: Autoscale? = nil, volume: Volume? = nil
    ) {
        self.name = name
        self.command = command
        self.image = image
        self.args = args
        self.port = port
        self.health = health
        self.env = env
        self.resources = resources
        self.replicas = replicas
        self.autoscale = autoscale
        self.volume = volume
    }
}

extension Component {
    private enum CodingKeys: String, CodingKey {
        case name, command, image, args, port, healthCheck, healthPath, env, resources, replicas, autoscale, volume
    }

    /// The health check is written as the template has it: `healthCheck` (`http` or `tcp`)
    /// and, for http, `healthPath`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(command, forKey: .command)
        try container.encode(image, forKey: .image)
        try container.encode(args, forKey: .args)
        try container.encode(port, forKey: .port)
        switch health {
        case .http(let path):
            try container.encode("http", forKey: .healthCheck)
            try container.encode(path, forKey: .healthPath)
        case .tcp:
            try container.encode("tcp", forKey: .healthCheck)
        }
        try container.encode(env, forKey: .env)
        try container.encode(resources, forKey: .resources)
        try container.encode(replicas, forKey: .replicas)
        try container.encodeIfPresent(autoscale, forKey: .autoscale)
        try container.encodeIfPresent(volume, forKey: .volume)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let check = try container.decode(String.self, forKey: .healthCheck)
        self.init(
            name: try container.decode(String.self, forKey: .name),
            command: try container.decode([String].self, forKey: .command),
            image: try container.decode(String.self, forKey: .image),
            args: try container.decode([String].self, forKey: .args),
            port: try container.decode(Int.self, forKey: .port),
            health: check == "tcp" ? .tcp : .http(path: try container.decode(String.self, forKey: .healthPath)),
            env: try container.decode([String: String].self, forKey: .env),
            resources: try container.decode(Resources.self, forKey: .resources),
            replicas: try container.decode(Int.self, forKey: .replicas),
            autoscale: try container.decodeIfPresent(Autoscale.self, forKey: .autoscale),
            volume: try container.decodeIfPresent(Volume.self, forKey: .volume))
    }
}

/// Ready means: `http`, the path answers 2xx; `tcp`, the port accepts connections (for
/// servers that do not speak HTTP, such as a database).
public enum HealthCheck: Sendable, Equatable {
    case http(path: String)
    case tcp

    /// Says what the check waits for, in words: "/health" or "a TCP connection".
    public var description: String {
        switch self {
        case .http(let path): path
        case .tcp: "a TCP connection"
        }
    }
}

/// Kubernetes-style CPU and memory quantities (`100m`, `256Mi`).
public struct Resources: Sendable, Equatable, Codable {
    public var requests: ResourceAmounts
    public var limits: ResourceAmounts

    public init(requests: ResourceAmounts = .init(), limits: ResourceAmounts = .init()) {
        self.requests = requests
        self.limits = limits
    }
}

public struct ResourceAmounts: Sendable, Equatable, Codable {
    public var cpu: String?
    public var memory: String?

    public init(cpu: String? = nil, memory: String? = nil) {
        self.cpu = cpu
        self.memory = memory
    }
}

/// Horizontal autoscaling on CPU use.
public struct Autoscale: Sendable, Equatable, Codable {
    public var min: Int
    public var max: Int
    public var cpuPercent: Int

    public init(min: Int, max: Int, cpuPercent: Int) {
        self.min = min
        self.max = max
        self.cpuPercent = cpuPercent
    }
}

/// A persistent volume: a PersistentVolumeClaim on Kubernetes, a directory locally.
public struct Volume: Sendable, Equatable, Codable {
    public var size: String
    public var mountPath: String

    public init(size: String, mountPath: String) {
        self.size = size
        self.mountPath = mountPath
    }
}
