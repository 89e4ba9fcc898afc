import EnvHubCore
import EnvHubRuntime
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Environments as Kubernetes objects (see `EnvironmentObjects`): activate applies them with
/// the workloads scaled up and follows the project's pods until every component is ready,
/// deactivate scales the workloads to zero (volumes stay), delete removes every object with
/// the project's labels (volumes included), and `check` puts back what was deleted by hand.
/// The gateway reaches a component at `http://{service}.{namespace}.svc:{port}`.
///
/// The project's secret comes from the hub (`EnvironmentSpec.secret`): the hub's role may
/// write Secrets but not read them, since reading cannot be limited to envhub's namespaces
/// (deploy/hub/rbac.yaml). So Secrets are only ever applied and deleted by name.
public final class KubernetesRuntime: EnvironmentRuntime {
    public let client: KubernetesClient
    public let settings: KubernetesSettings
    let logger: Logger
    /// When each project was last looked at by `check`.
    private let lastChecks = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])

    /// Kinds a project owns, deleted in this order (the autoscaler before what it scales).
    static let projectKinds = ["HorizontalPodAutoscaler", "Deployment", "StatefulSet", "Service", "PersistentVolumeClaim"]
    static let workloadKinds = ["Deployment", "StatefulSet"]
    /// Waiting reasons that will not fix themselves: the start fails at once with the reason.
    static let hopeless: Set<String> = [
        "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError",
    ]

    public init(client: KubernetesClient, settings: KubernetesSettings = .init(), logger: Logger = Logger(label: "envhub")) {
        self.client = client
        self.settings = settings
        self.logger = logger
    }

    public var kind: String { "kubernetes" }
    public var summary: String { "Kubernetes at \(client.connection.server.absoluteString)" }

    /// Applies every object with the workloads scaled up, then follows the pods until each
    /// component has its replicas ready, within the template's start timeout. A start that
    /// fails leaves the workloads scaled to zero.
    public func start(
        _ spec: EnvironmentSpec, progress: @escaping @Sendable (StartStep) -> Void = { _ in },
        spawned: @escaping @Sendable (EnvironmentRecord) async -> Void = { _ in }
    ) async throws -> EnvironmentRecord {
        let objects = EnvironmentObjects(spec: spec, settings: settings)
        let record = EnvironmentRecord(
            components: spec.template.components.map { ComponentRecord(name: $0.name, host: objects.host(of: $0), port: $0.port) },
            exposed: spec.template.expose)
        do {
            for object in objects.all(active: true) {
                if Self.workloadKinds.contains(object["kind"]?.string ?? ""),
                   let name = object.value(at: "metadata.labels")?["app.kubernetes.io/name"]?.string {
                    progress(.startingComponent(name))
                }
                try await client.apply(object)
            }
            await spawned(record)
            for component in spec.template.components { progress(.waitingForHealth(component.name)) }
            try await waitUntilReady(spec, objects: objects, progress: progress)
        } catch {
            // Not cancelled with the start: it runs as its own task, awaited here.
            let identity = spec.identity
            await Task { try? await self.stop(identity, record: record) }.value
            throw error
        }
        return record
    }

    /// Scales every workload of the project to zero; its volumes stay.
    public func stop(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async throws {
        for path in try await workloads(of: environment) { try await client.scale(path, replicas: 0) }
    }

    /// Removes every object labelled with the project, volumes included, and its Secret.
    public func delete(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async throws {
        lastChecks.withLockedValue { $0[environment.projectID] = nil }
        let namespace = EnvironmentObjects.namespace(of: environment.owner)
        for kind in Self.projectKinds {
            let collection = try ResourcePath.collection(kind, namespace: namespace)
            for item in try await client.list(collection, labelSelector: EnvironmentObjects.selector(of: environment)).items {
                guard let name = item.value(at: "metadata.name")?.string else { continue }
                try await client.delete(collection + "/" + name)
            }
        }
        try await client.delete(
            try ResourcePath.collection("Secret", namespace: namespace) + "/" + EnvironmentObjects.secretName(of: environment.project))
    }

    /// At most once per `settings.checkInterval` per project: puts back objects deleted by
    /// hand, then looks at the pods: one stuck on a reason that
    /// will not fix itself (CrashLoopBackOff, ImagePullBackOff...) is a crash. Kubernetes
    /// restarts containers itself, so a pod that is merely not ready yet is left to it. When
    /// the API server cannot be asked, the environment is taken to be running.
    public func check(_ spec: EnvironmentSpec, record: EnvironmentRecord) async -> EnvironmentCheck {
        let now = ContinuousClock.now
        let due = lastChecks.withLockedValue { checks in
            guard checks[spec.projectID].map({ now - $0 >= settings.checkInterval }) ?? true else { return false }
            checks[spec.projectID] = now
            return true
        }
        guard due else { return .running }
        do {
            let created = try await repair(spec, active: true)
            let pods = try await client.list(Self.pods(in: spec.identity), labelSelector: EnvironmentObjects.selector(of: spec.identity)).items
            for pod in pods.map(PodState.init) {
                if let reason = pod.waitingReason, Self.hopeless.contains(reason) {
                    return .crashed("\(pod.component): \(reason)\(pod.message.map { ": " + $0 } ?? "")")
                }
            }
            return created.isEmpty ? .running : .repaired(created)
        } catch {
            if Task.isCancelled { return .running }  // the hub is stopping
            logger.warning("checking an environment failed", metadata: ["project.id": "\(spec.projectID)", "error": "\(error)"])
            return .running
        }
    }

    /// Components whose workload has a ready replica.
    public func livingComponents(_ spec: EnvironmentSpec) async throws -> [String] {
        let objects = EnvironmentObjects(spec: spec, settings: settings)
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
    /// workloads scaled as `active` says, and scales up a workload of an active project that
    /// was scaled to zero by hand. Returns the kinds and names it had to change.
    @discardableResult
    public func repair(_ spec: EnvironmentSpec, active: Bool) async throws -> [String] {
        let objects = EnvironmentObjects(spec: spec, settings: settings)
        var created: [String] = []
        for object in objects.all(active: active) {
            if object["kind"]?.string == "Secret" {
                try await client.apply(object)  // not readable (see the type's comment); applying the same value changes nothing
                continue
            }
            let name = "\(object["kind"]?.string ?? "") \(object.value(at: "metadata.name")?.string ?? "")"
            if let existing = try await client.get(try ResourcePath.object(object)) {
                // A workload scaled to zero by hand while it should run is scaled up again.
                let scaledDown = existing.value(at: "spec.replicas")?.int == 0 && (object.value(at: "spec.replicas")?.int ?? 0) > 0
                guard scaledDown else { continue }
                try await client.apply(object)
                created.append(name + " (scaled up again)")
                continue
            }
            try await client.apply(object)
            created.append(name)
        }
        return created
    }

    /// Deletes the objects of projects that no longer exist: every workload, Service, Secret,
    /// autoscaler and claim envhub labelled in any namespace, unless `exists(user, project)`.
    @discardableResult
    public func removeOrphans(exists: @Sendable (_ user: String, _ project: String) -> Bool) async throws -> [String] {
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

    /// The last `count` lines of each of the project's pods, prefixed with the component.
    public func lastLines(_ environment: EnvironmentIdentity, count: Int) async -> [String] {
        do {
            var lines: [String] = []
            for (path, component) in try await pods(of: environment) {
                lines += try await client.podLog(path, tailLines: count).map { "[\(component)] \($0)" }
            }
            return lines
        } catch {
            return ["[envhub] the pods' logs could not be read: \(error)"]
        }
    }

    /// What the project's pods write from now on, prefixed with the component: the pods
    /// there now from their next line, pods that appear later (a restart, a scale-up) from
    /// their first.
    public func followLogs(_ environment: EnvironmentIdentity) -> AsyncStream<String> {
        let client = self.client
        return AsyncStream { continuation in
            let collection = Self.pods(in: environment)
            let task = Task {
                let present = Set(((try? await self.pods(of: environment)) ?? []).map(\.path))
                var followed: Set<String> = []
                await withTaskGroup(of: Void.self) { group in
                    for await event in client.changes(collection, labelSelector: EnvironmentObjects.selector(of: environment)) {
                        let pod = PodState(event.object)
                        guard event.kind != .deleted, pod.running || pod.ready, let path = try? ResourcePath.object(event.object),
                              followed.insert(path).inserted else { continue }
                        let tail = present.contains(path) ? 0 : nil
                        group.addTask {
                            // A pod that goes ends its log; a restarted one is followed anew.
                            do {
                                for try await line in client.followPodLog(path, tailLines: tail) {
                                    continuation.yield("[\(pod.component)] \(line)")
                                }
                            } catch {}
                        }
                    }
                    group.cancelAll()
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: helpers

    /// The paths of the project's Deployments and StatefulSets.
    private func workloads(of environment: EnvironmentIdentity) async throws -> [String] {
        var paths: [String] = []
        for kind in Self.workloadKinds {
            let collection = try ResourcePath.collection(kind, namespace: EnvironmentObjects.namespace(of: environment.owner))
            for item in try await client.list(collection, labelSelector: EnvironmentObjects.selector(of: environment)).items {
                if let name = item.value(at: "metadata.name")?.string { paths.append(collection + "/" + name) }
            }
        }
        return paths
    }

    /// The collection of the pods in the project's namespace.
    private static func pods(in environment: EnvironmentIdentity) -> String {
        "/api/v1/namespaces/\(EnvironmentObjects.namespace(of: environment.owner))/pods"
    }

    /// The paths of the project's pods and the component of each.
    private func pods(of environment: EnvironmentIdentity) async throws -> [(path: String, component: String)] {
        let collection = Self.pods(in: environment)
        return try await client.list(collection, labelSelector: EnvironmentObjects.selector(of: environment)).items.compactMap { pod in
            guard let name = pod.value(at: "metadata.name")?.string else { return nil }
            return (collection + "/" + name, PodState(pod).component)
        }
    }

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
    let running: Bool
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
        running = container?.value(at: "state.running") != nil
        let scheduled = condition("PodScheduled")
        if ready {
            summary = "ready"; message = nil
        } else if let waitingReason {
            message = container?.value(at: "state.waiting.message")?.string
            summary = waitingReason == "ContainerCreating" ? "pulling image and creating the container" : waitingReason
        } else if running {
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
