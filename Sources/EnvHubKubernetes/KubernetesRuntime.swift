import EnvHubCore
import EnvHubRuntime
import Foundation

/// Environments as Kubernetes objects (see `EnvironmentObjects`): activate applies them with
/// the workloads scaled up and follows the project's pods until every component is ready,
/// deactivate scales the workloads to zero (volumes stay), delete removes every object with
/// the project's labels (volumes included), and `repair` puts back what was deleted by hand.
/// The gateway reaches a component at `http://{service}.{namespace}.svc:{port}`.
///
/// The project's secret comes from the caller (the hub keeps it): the hub's role may write
/// Secrets but not read them, since reading cannot be limited to envhub's namespaces
/// (deploy/hub/rbac.yaml). So Secrets are only ever applied and deleted by name.
public final class KubernetesRuntime: Sendable {
    public let client: KubernetesClient
    public let settings: KubernetesSettings

    /// Kinds a project owns, deleted in this order (the autoscaler before what it scales).
    static let projectKinds = ["HorizontalPodAutoscaler", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim"]
    /// Waiting reasons that will not fix themselves: the start fails at once with the reason.
    static let hopeless: Set<String> = [
        "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError",
    ]

    public init(client: KubernetesClient, settings: KubernetesSettings = .init()) {
        self.client = client
        self.settings = settings
    }

    /// Where the gateway sends the exposed component's traffic.
    public func endpoint(of spec: EnvironmentSpec) -> (host: String, port: Int)? {
        guard let component = spec.template.exposedComponent else { return nil }
        return (EnvironmentObjects(spec: spec, secret: "", settings: settings).host(of: component), component.port)
    }

    /// Applies every object with the workloads scaled up, then follows the pods until each
    /// component has its replicas ready, within the template's start timeout.
    public func start(
        _ spec: EnvironmentSpec, secret: String, progress: @escaping @Sendable (StartStep) -> Void = { _ in }
    ) async throws {
        let objects = EnvironmentObjects(spec: spec, secret: secret, settings: settings)
        for object in objects.all(active: true) {
            if ["Deployment", "StatefulSet"].contains(object["kind"]?.string ?? ""),
               let name = object.value(at: "metadata.labels")?["app.kubernetes.io/name"]?.string {
                progress(.startingComponent(name))
            }
            try await client.apply(object)
        }
        for component in spec.template.components { progress(.waitingForHealth(component.name)) }
        try await waitUntilReady(spec, objects: objects, progress: progress)
    }

    /// Scales every workload of the project to zero; its volumes stay.
    public func stop(_ spec: EnvironmentSpec) async throws {
        let objects = EnvironmentObjects(spec: spec, secret: "", settings: settings)
        for component in spec.template.components {
            let kind = component.volume == nil ? "Deployment" : "StatefulSet"
            let path = try ResourcePath.collection(kind, namespace: objects.namespace) + "/" + objects.name(of: component)
            do {
                try await client.scale(path, replicas: 0)
            } catch KubernetesError.status(404, _, _) {
                continue  // nothing to stop
            }
        }
    }

    /// Removes every object labelled with the project, volumes included, and its Secret.
    public func delete(_ spec: EnvironmentSpec) async throws {
        let objects = EnvironmentObjects(spec: spec, secret: "", settings: settings)
        for kind in Self.projectKinds {
            let collection = try ResourcePath.collection(kind, namespace: objects.namespace)
            for item in try await client.list(collection, labelSelector: objects.projectSelector).items {
                guard let name = item.value(at: "metadata.name")?.string else { continue }
                try await client.delete(collection + "/" + name)
            }
        }
        try await client.delete(try ResourcePath.collection("Secret", namespace: objects.namespace) + "/" + objects.secretName)
    }

    /// Components whose workload has a ready replica.
    public func livingComponents(_ spec: EnvironmentSpec) async throws -> [String] {
        let objects = EnvironmentObjects(spec: spec, secret: "", settings: settings)
        var living: [String] = []
        for component in spec.template.components {
            let kind = component.volume == nil ? "Deployment" : "StatefulSet"
            let path = try ResourcePath.collection(kind, namespace: objects.namespace) + "/" + objects.name(of: component)
            if let workload = try await client.get(path), (workload.value(at: "status.readyReplicas")?.int ?? 0) > 0 {
                living.append(component.name)
            }
        }
        return living
    }

    /// Puts back whatever of the project's objects is missing (deleted by hand), the
    /// workloads scaled as `active` says. Returns the kinds and names it had to create.
    @discardableResult
    public func repair(_ spec: EnvironmentSpec, secret: String, active: Bool) async throws -> [String] {
        let objects = EnvironmentObjects(spec: spec, secret: secret, settings: settings)
        var created: [String] = []
        for object in objects.all(active: active) {
            if object["kind"]?.string == "Secret" {
                try await client.apply(object)  // not readable (see the type's comment); applying the same value changes nothing
                continue
            }
            guard try await client.get(try ResourcePath.object(object)) == nil else { continue }
            try await client.apply(object)
            created.append("\(object["kind"]?.string ?? "") \(object.value(at: "metadata.name")?.string ?? "")")
        }
        return created
    }

    /// Deletes the objects of projects that no longer exist: every workload, Service, Secret,
    /// autoscaler and claim envhub labelled in any namespace, unless `exists(user, project)`.
    @discardableResult
    public func removeOrphans(exists: (String, String) -> Bool) async throws -> [String] {
        var removed: [String] = []
        var orphans: Set<[String]> = []
        for kind in Self.projectKinds {
            let collection = try ResourcePath.collection(kind, namespace: nil)
            for item in try await client.list(collection, labelSelector: "app.kubernetes.io/managed-by=envhub").items {
                let labels = item.value(at: "metadata.labels")
                guard let user = labels?["envhub.io/user"]?.string, let project = labels?["envhub.io/project"]?.string,
                      !exists(user, project), let path = try? ResourcePath.object(item) else { continue }
                try await client.delete(path)
                removed.append(path)
                orphans.insert([user, project])
            }
        }
        for orphan in orphans {
            let path = try ResourcePath.collection("Secret", namespace: "envhub-\(orphan[0])") + "/\(orphan[1])-secret"
            if try await client.delete(path) { removed.append(path) }
        }
        return removed
    }

    // MARK: helpers

    /// Follows the project's pods (a watch) until every component has as many ready pods as
    /// it wants; reports each pod's progress once; fails at once on a hopeless waiting reason
    /// and at the deadline with what was last seen.
    private func waitUntilReady(
        _ spec: EnvironmentSpec, objects: EnvironmentObjects, progress: @escaping @Sendable (StartStep) -> Void
    ) async throws {
        let wanted = Dictionary(uniqueKeysWithValues: spec.template.components.map { ($0.name, $0.replicas) })
        let pods = try ResourcePath.collection("Pod", namespace: objects.namespace)
        let timeout = Duration.seconds(spec.template.startTimeoutSeconds)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var states: [String: PodState] = [:]  // by pod name
                var reported: Set<String> = []
                var ready: Set<String> = []
                for await event in self.client.changes(pods, labelSelector: objects.projectSelector) {
                    guard let name = event.object.value(at: "metadata.name")?.string,
                          let component = event.object.value(at: "metadata.labels")?["app.kubernetes.io/name"]?.string else { continue }
                    states[name] = event.kind == .deleted ? nil : PodState(event.object)
                    guard let state = states[name] else { continue }
                    if reported.insert("\(name) \(state.summary)").inserted { progress(.componentStatus(component, state.summary)) }
                    if let reason = state.waitingReason, Self.hopeless.contains(reason) {
                        throw RuntimeError("\(component) cannot start: \(reason)\(state.message.map { ": " + $0 } ?? "")")
                    }
                    for (component, count) in wanted where !ready.contains(component) {
                        if states.values.filter({ $0.component == component && $0.ready }).count >= count {
                            ready.insert(component)
                            progress(.componentReady(component))
                        }
                    }
                    if ready.count == wanted.count { return }
                }
                throw CancellationError()
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw RuntimeError("not every component was ready after \(spec.template.startTimeoutSeconds) s")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

/// What a pod's status says, in a few words.
struct PodState {
    let component: String
    let ready: Bool
    let waitingReason: String?
    let message: String?
    let summary: String

    init(_ pod: JSONValue) {
        component = pod.value(at: "metadata.labels")?["app.kubernetes.io/name"]?.string ?? ""
        let conditions = pod.value(at: "status.conditions")?.array ?? []
        let condition = { (type: String) in conditions.first { $0["type"]?.string == type } }
        ready = condition("Ready")?["status"]?.string == "True"
        let container = pod.value(at: "status.containerStatuses")?.array?.first
        waitingReason = container?.value(at: "state.waiting.reason")?.string
        let scheduled = condition("PodScheduled")
        if ready {
            summary = "ready"; message = nil
        } else if let waitingReason {
            message = container?.value(at: "state.waiting.message")?.string
            summary = waitingReason == "ContainerCreating" ? "pulling image and creating the container" : waitingReason
        } else if container?.value(at: "state.running") != nil {
            summary = "started"; message = nil
        } else if scheduled?["status"]?.string == "False" {
            message = scheduled?["message"]?.string
            summary = (scheduled?["reason"]?.string ?? "not scheduled") + (message.map { ": " + $0 } ?? "")
        } else if scheduled?["status"]?.string == "True" {
            summary = "scheduled"; message = nil
        } else {
            summary = "pending"; message = nil
        }
    }
}
