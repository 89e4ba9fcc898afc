import EnvHubCore
import EnvHubRuntime
import Foundation

/// Cluster-wide choices for environments: where the hub runs (only its pods may reach
/// environments) and what each user's namespace may use.
public struct KubernetesSettings: Sendable {
    /// The namespace of the hub's pods.
    public var hubNamespace = "envhub"
    /// Labels of the hub's pods (deploy/ sets them).
    public var hubPodLabels: [(String, String)] = [("app.kubernetes.io/name", "envhub"), ("app.kubernetes.io/component", "hub")]
    /// Per user namespace (ResourceQuota).
    public var quota: [(String, String)] = [
        ("requests.cpu", "4"), ("requests.memory", "8Gi"), ("limits.cpu", "8"), ("limits.memory", "16Gi"),
        ("pods", "30"), ("persistentvolumeclaims", "10"), ("requests.storage", "50Gi"),
    ]
    /// For containers whose template says nothing (LimitRange).
    public var defaultRequests = ResourceAmounts(cpu: "100m", memory: "128Mi")
    public var defaultLimits = ResourceAmounts(cpu: "1", memory: "512Mi")
    /// Nil: the cluster's default StorageClass.
    public var storageClass: String?
    /// How often one active environment is looked at by the reconciler (`KubernetesRuntime.check`):
    /// each look is about ten requests to the API server, so not every time the hub checks.
    public var checkInterval: Duration = .seconds(30)

    public init() {}
}

/// Every Kubernetes object of one project's environment, built in this one place:
///
/// - per user: the namespace `envhub-{user}` with a NetworkPolicy (only the hub's pods, and
///   the namespace's own pods, may connect in), a ResourceQuota and a LimitRange;
/// - per project: a Secret holding the project's `{{secret}}`;
/// - per component: a ClusterIP Service, a Deployment (a StatefulSet with a
///   PersistentVolumeClaim template when it has a volume) and a HorizontalPodAutoscaler
///   when it autoscales.
///
/// Objects are labelled `app.kubernetes.io/*` plus `envhub.io/user` and `envhub.io/project`,
/// which is how the runtime finds (and deletes) a project's objects.
public struct EnvironmentObjects: Sendable {
    public let spec: EnvironmentSpec
    public let settings: KubernetesSettings

    public init(spec: EnvironmentSpec, settings: KubernetesSettings = .init()) {
        self.spec = spec
        self.settings = settings
    }

    public var namespace: String { Self.namespace(of: spec.owner) }
    public static func namespace(of user: UserName) -> String { "envhub-\(user)" }

    /// `{project}-{component}`: the Service, workload and HPA of a component.
    public func name(of component: Component) -> String { "\(spec.project)-\(component.name)" }
    public var secretName: String { Self.secretName(of: spec.project) }
    public static func secretName(of project: ProjectName) -> String { "\(project)-secret" }

    /// Where a component is reached inside the cluster.
    public func host(of component: Component) -> String { "\(name(of: component)).\(namespace).svc" }

    /// The label selector of everything belonging to the project.
    public var projectSelector: String { Self.selector(of: spec.identity) }
    public static func selector(of environment: EnvironmentIdentity) -> String {
        "envhub.io/user=\(environment.owner),envhub.io/project=\(environment.project)"
    }

    /// The user's objects, then the project's; workloads at `replicas` (0 when inactive) or
    /// the template's count.
    public func all(active: Bool) -> [JSONValue] { userObjects + projectObjects(active: active) }

    // MARK: per user

    public var userObjects: [JSONValue] {
        let labels = userLabels
        return [
            ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace), "labels": namespaceLabels]],
            [
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": metadata("only-envhub-in", labels: labels),
                "spec": [
                    "podSelector": [:],
                    "policyTypes": ["Ingress"],
                    "ingress": [[
                        "from": [
                            [
                                "namespaceSelector": ["matchLabels": ["kubernetes.io/metadata.name": .string(settings.hubNamespace)]],
                                "podSelector": ["matchLabels": Self.object(settings.hubPodLabels)],
                            ],
                            ["podSelector": [:]],
                        ],
                    ]],
                ],
            ],
            [
                "apiVersion": "v1", "kind": "ResourceQuota", "metadata": metadata("envhub-quota", labels: labels),
                "spec": ["hard": Self.object(settings.quota)],
            ],
            [
                "apiVersion": "v1", "kind": "LimitRange", "metadata": metadata("envhub-defaults", labels: labels),
                "spec": ["limits": [[
                    "type": "Container",
                    "defaultRequest": Self.amounts(settings.defaultRequests),
                    "default": Self.amounts(settings.defaultLimits),
                ]]],
            ],
        ]
    }

    /// The user's labels, and the "restricted" Pod Security Standard, which every pod here meets.
    private var namespaceLabels: JSONValue {
        var labels = userLabels
        labels["pod-security.kubernetes.io/enforce"] = "restricted"
        return labels
    }

    private var userLabels: JSONValue {
        ["app.kubernetes.io/managed-by": "envhub", "app.kubernetes.io/part-of": "envhub", "envhub.io/user": .string(spec.owner.rawValue)]
    }

    // MARK: per project

    public func projectObjects(active: Bool) -> [JSONValue] {
        var objects: [JSONValue] = [[
            "apiVersion": "v1", "kind": "Secret",
            "metadata": metadata(secretName, labels: projectLabels(component: nil)),
            "type": "Opaque",
            "data": ["secret": .string(Data(spec.secret.utf8).base64EncodedString())],
        ]]
        for component in spec.template.components {
            objects.append(service(component))
            objects.append(workload(component, replicas: active ? component.replicas : 0))
            if let autoscale = component.autoscale { objects.append(autoscaler(component, autoscale)) }
        }
        return objects
    }

    private func projectLabels(component: Component?) -> JSONValue {
        var labels: JSONValue = [
            "app.kubernetes.io/managed-by": "envhub", "app.kubernetes.io/part-of": "envhub",
            "envhub.io/user": .string(spec.owner.rawValue), "envhub.io/project": .string(spec.project.rawValue),
        ]
        if let component {
            labels["app.kubernetes.io/name"] = .string(component.name)
            labels["app.kubernetes.io/instance"] = .string(name(of: component))
        }
        return labels
    }

    private func selector(_ component: Component) -> JSONValue {
        ["envhub.io/project": .string(spec.project.rawValue), "app.kubernetes.io/name": .string(component.name)]
    }

    private func metadata(_ name: String, labels: JSONValue) -> JSONValue {
        ["name": .string(name), "namespace": .string(namespace), "labels": labels]
    }

    private func service(_ component: Component) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "Service",
            "metadata": metadata(name(of: component), labels: projectLabels(component: component)),
            "spec": [
                "type": "ClusterIP",
                "selector": selector(component),
                "ports": [["name": "main", "port": .number(Double(component.port)), "targetPort": .number(Double(component.port))]],
            ],
        ]
    }

    private func workload(_ component: Component, replicas: Int) -> JSONValue {
        let labels = projectLabels(component: component)
        var podSpec: JSONValue = [
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": podSecurityContext(component),
            "containers": [container(component)],
        ]
        if component.volume == nil { podSpec["terminationGracePeriodSeconds"] = 10 }
        var workloadSpec: JSONValue = [
            "replicas": .number(Double(replicas)),
            "selector": ["matchLabels": selector(component)],
            "template": ["metadata": ["labels": labels], "spec": podSpec],
        ]
        guard let volume = component.volume else {
            return ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(name(of: component), labels: labels), "spec": workloadSpec]
        }
        var claimSpec: JSONValue = ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": .string(volume.size)]]]
        if let storageClass = settings.storageClass { claimSpec["storageClassName"] = .string(storageClass) }
        workloadSpec["serviceName"] = .string(name(of: component))
        // Volumes stay when the project is deactivated (scaled to 0) and go when it is deleted.
        workloadSpec["persistentVolumeClaimRetentionPolicy"] = ["whenDeleted": "Delete", "whenScaled": "Retain"]
        workloadSpec["volumeClaimTemplates"] = [["metadata": ["name": "data", "labels": projectLabels(component: nil)], "spec": claimSpec]]
        return ["apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata(name(of: component), labels: labels), "spec": workloadSpec]
    }

    private func container(_ component: Component) -> JSONValue {
        var container: JSONValue = [
            "name": .string(component.name),
            "image": .string(component.image),
            // Images loaded into a local cluster (kind, minikube) are used as they are.
            "imagePullPolicy": "IfNotPresent",
        ]
        if !component.args.isEmpty { container["args"] = .array(component.args.map { .string(fill($0)) }) }
        container["ports"] = [["name": "main", "containerPort": .number(Double(component.port))]]
        container["env"] = .array(environment(component))
        let probe = probe(component)
        container["readinessProbe"] = probe
        var liveness = probe
        liveness["initialDelaySeconds"] = .number(Double(spec.template.startTimeoutSeconds))
        liveness["failureThreshold"] = 3
        container["livenessProbe"] = liveness
        container["resources"] = resources(component.resources)
        container["securityContext"] = [
            "allowPrivilegeEscalation": false,
            "capabilities": ["drop": ["ALL"]],
        ]
        if let volume = component.volume {
            container["volumeMounts"] = [["name": "data", "mountPath": .string(volume.mountPath)]]
        }
        return container
    }

    /// The project's secret first (later values refer to it as `$(ENVHUB_PROJECT_SECRET)`,
    /// Kubernetes' dependent variables), then what every component gets, then the template's.
    private func environment(_ component: Component) -> [JSONValue] {
        var env: [JSONValue] = [
            ["name": "ENVHUB_PROJECT_SECRET", "valueFrom": ["secretKeyRef": ["name": .string(secretName), "key": "secret"]]],
            ["name": "USER_ID", "value": .string(spec.owner.rawValue)],
            ["name": "PROJECT_ID", "value": .string(spec.project.rawValue)],
            ["name": "BASE_PATH", "value": .string(spec.basePath)],
            ["name": "PORT", "value": .string(String(component.port))],
            // Locally components listen on 127.0.0.1; in a pod, the Service must reach them.
            ["name": "HOST", "value": "0.0.0.0"],
        ]
        if let volume = component.volume {
            env.append(["name": "VOLUME_DIR", "value": .string(volume.mountPath)])
            // The official postgres image reads PGDATA; a volume's root holds lost+found, which initdb refuses.
            env.append(["name": "PGDATA", "value": .string(volume.mountPath + "/pgdata")])
        }
        for (name, value) in component.env.sorted(by: { $0.key < $1.key }) {
            env.append(["name": .string(name), "value": .string(fill(value))])
        }
        return env
    }

    private func fill(_ text: String) -> String {
        let endpoints = Dictionary(uniqueKeysWithValues: spec.template.components.map { ($0.name, (host(of: $0), $0.port)) })
        return Placeholders(user: spec.owner.rawValue, project: spec.project.rawValue, secret: "$(ENVHUB_PROJECT_SECRET)",
                            endpoints: endpoints).fill(text)
    }

    private func probe(_ component: Component) -> JSONValue {
        var probe: JSONValue
        switch component.health {
        case .http(let path): probe = ["httpGet": ["path": .string(path), "port": "main"]]
        case .tcp: probe = ["tcpSocket": ["port": "main"]]
        }
        probe["periodSeconds"] = 5
        probe["timeoutSeconds"] = 2
        return probe
    }

    /// Non-root, with the default seccomp profile. The official postgres image runs as its
    /// `postgres` user (999), which also owns the volume (fsGroup).
    private func podSecurityContext(_ component: Component) -> JSONValue {
        var context: JSONValue = ["runAsNonRoot": true, "seccompProfile": ["type": "RuntimeDefault"]]
        if component.image.hasPrefix("postgres:") || component.image.hasPrefix("docker.io/library/postgres:") {
            context["runAsUser"] = 999
            context["runAsGroup"] = 999
            context["fsGroup"] = 999
        } else if component.volume != nil {
            context["fsGroup"] = 65532
        }
        return context
    }

    private func resources(_ resources: Resources) -> JSONValue {
        var result: JSONValue = [:]
        let requests = Self.amounts(resources.requests)
        let limits = Self.amounts(resources.limits)
        if requests != [:] { result["requests"] = requests }
        if limits != [:] { result["limits"] = limits }
        return result
    }

    private func autoscaler(_ component: Component, _ autoscale: Autoscale) -> JSONValue {
        [
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(name(of: component), labels: projectLabels(component: component)),
            "spec": [
                "scaleTargetRef": [
                    "apiVersion": "apps/v1", "kind": component.volume == nil ? "Deployment" : "StatefulSet",
                    "name": .string(name(of: component)),
                ],
                "minReplicas": .number(Double(autoscale.min)),
                "maxReplicas": .number(Double(autoscale.max)),
                "metrics": [[
                    "type": "Resource",
                    "resource": ["name": "cpu", "target": ["type": "Utilization", "averageUtilization": .number(Double(autoscale.cpuPercent))]],
                ]],
            ],
        ]
    }

    private static func amounts(_ amounts: ResourceAmounts) -> JSONValue {
        var result: JSONValue = [:]
        if let cpu = amounts.cpu { result["cpu"] = .string(cpu) }
        if let memory = amounts.memory { result["memory"] = .string(memory) }
        return result
    }

    private static func object(_ pairs: [(String, String)]) -> JSONValue { .object(pairs.map { ($0.0, .string($0.1)) }) }
}
