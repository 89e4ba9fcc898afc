import EnvHubCore
import EnvHubRuntime
import EnvHubStore
import Foundation
import Logging
import ServiceLifecycle

/// Starts and stops environments. Requests move a project's state in the store in one step
/// (so two activations start it once) and queue a job; the jobs of one project run one at a
/// time. The same service re-adopts what still runs when the hub starts and restarts
/// components that crash, up to a limit. Environments keep running when the hub stops.
final class EnvironmentLifecycle: Service, Sendable {
    enum Job: Sendable {
        case start(projectID: String, delay: Duration)
        case stop(projectID: String)
        case delete(projectID: String)
    }

    let store: any HubStore
    let runtime: any EnvironmentRuntime
    let templates: TemplateCatalog
    let maxActivePerUser: Int
    let crashRestartLimit: Int
    let checkInterval: Duration
    /// How often what runs for deleted projects is looked for (`removeOrphans`).
    let orphanSweepInterval: Duration
    /// Active environments unused for longer are stopped; nil never stops them.
    let idleTimeout: TimeInterval?
    /// Stop every environment when the service shuts down gracefully.
    let stopAllOnExit: Bool
    let activity: ActivityTracker
    let events: ProjectEvents
    let logger: Logger
    /// Opened once the store is migrated.
    let storeReady = ReadyGate()
    /// Opened once the start-up reconciliation has looked at every environment.
    let reconciled = ReadyGate()
    let locks = KeyedLock()
    private let slots: StartSlots
    let restarts = RestartCounts()
    let secrets: ProjectSecrets
    private let jobs: AsyncStream<Job>
    let queue: AsyncStream<Job>.Continuation

    init(
        store: any HubStore, runtime: any EnvironmentRuntime, templates: TemplateCatalog, maxConcurrentStarts: Int,
        maxActivePerUser: Int, crashRestartLimit: Int = 3, checkInterval: Duration = .seconds(2),
        orphanSweepInterval: Duration = .seconds(60),
        idleTimeout: TimeInterval?, stopAllOnExit: Bool = false, logger: Logger
    ) {
        self.idleTimeout = idleTimeout
        // Often enough that the culler, comparing with the store, never sees an open one as idle.
        activity = ActivityTracker(openRefresh: min(30, (idleTimeout ?? 3600) / 4))
        self.stopAllOnExit = stopAllOnExit
        self.store = store
        self.runtime = runtime
        self.templates = templates
        self.maxActivePerUser = maxActivePerUser
        self.crashRestartLimit = crashRestartLimit
        self.checkInterval = checkInterval
        self.orphanSweepInterval = orphanSweepInterval
        self.logger = logger
        self.slots = StartSlots(limit: maxConcurrentStarts)
        self.events = ProjectEvents(replicas: store)
        self.secrets = ProjectSecrets(store: store)
        (jobs, queue) = AsyncStream.makeStream(of: Job.self)
    }

    // MARK: Requests

    /// Returns the project and whether anything was started (false: it already runs or starts).
    func activate(_ project: Project) async throws -> (project: Project, started: Bool) {
        try await locks.withLock("user:\(project.ownerID)") {
            if project.state == .active || project.state == .starting { return (project, false) }
            guard project.state.canMove(to: .starting) else { throw Self.illegal(project, to: .starting) }
            guard templates.template(named: project.template) != nil else {
                throw EnvHubError.conflict("project \(project.name) uses template \(project.template), which no longer exists")
            }
            let running = try await store.projects(ownedBy: project.owner).filter { $0.state == .starting || $0.state == .active }
            if running.count >= maxActivePerUser {
                throw EnvHubError.tooManyRequests(
                    "\(project.owner) already has \(running.count) active environments, the most allowed; deactivate one first",
                    retryAfterSeconds: 60)
            }
            guard let moved = try await move(
                projectID: project.id, from: [.inactive, .failed], to: .starting, reason: "", desired: .active, record: .keep, at: Date())
            else { return try await current(project, orIllegalMoveTo: .starting, alreadyThere: [.starting, .active]) }
            await restarts.reset(project.id)
            // A fresh start counts as use, or the culler would stop it at once.
            try await store.recordActivity([project.id: Date()])
            queue.yield(.start(projectID: project.id, delay: .zero))
            return (moved, true)
        }
    }

    /// Returns the project and whether anything was stopped (false: it was not running).
    func deactivate(_ project: Project, reason: String = "") async throws -> (project: Project, stopped: Bool) {
        if project.state == .inactive || project.state == .stopping { return (project, false) }
        guard project.state.canMove(to: .stopping) else { throw Self.illegal(project, to: .stopping) }
        guard let moved = try await move(
            projectID: project.id, from: [.starting, .active, .failed], to: .stopping, reason: reason, desired: .inactive,
            record: .keep, at: Date())
        else { return try await current(project, orIllegalMoveTo: .stopping, alreadyThere: [.inactive, .stopping]) }
        queue.yield(.stop(projectID: project.id))
        return (moved, true)
    }

    /// Deletes an inactive project at once (true); a running one is stopped first, in the
    /// background, and answered with its `deleting` state (false).
    func delete(_ project: Project) async throws -> (project: Project, done: Bool) {
        if project.state == .inactive || project.state == .failed {
            let removed: Bool = try await locks.withLock("project:\(project.id)") {
                try await self.removeEverything(project.id)
            }
            guard removed else { throw EnvHubError.notFound("no project \(project.owner)/\(project.name)") }
            return (project, true)
        }
        guard let moved = try await move(
            projectID: project.id, from: [.starting, .active, .stopping], to: .deleting, reason: "", desired: .inactive,
            record: .keep, at: Date())
        else {
            let now = try await current(project, orIllegalMoveTo: .deleting, alreadyThere: [.deleting])
            return (now.project, false)
        }
        queue.yield(.delete(projectID: project.id))
        return (moved, false)
    }

    /// Deletes every project of `owner` with what runs for it, and returns when all are gone:
    /// for deleting a user, whose projects the store drops with it (their environments would
    /// be left running, reachable by no one). A start in progress is cancelled by the move to
    /// `deleting`, as when one project is deleted; a stop in progress is waited for.
    func deleteProjects(of owner: UserName) async throws {
        for project in try await store.projects(ownedBy: owner) {
            if project.state.canMove(to: .deleting) {
                _ = try await move(
                    projectID: project.id, from: [.starting, .active, .stopping], to: .deleting, reason: "its owner is deleted",
                    desired: .inactive, record: .keep, at: Date())
            }
            _ = try await finishDeleting(project.id)
        }
    }

    /// Stops what still runs for a project in `deleting` and removes the project with its
    /// records (false: it was already gone), under the project's lock.
    private func finishDeleting(_ id: String) async throws -> Bool {
        try await locks.withLock("project:\(id)") {
            await self.stop(id, to: .deleting, from: [.deleting])
            return try await self.removeEverything(id)
        }
    }

    /// Stops every environment and leaves each inactive (a deleting one stays deleting, for
    /// the reconciler to finish): for `serve --stop-environments-on-exit` and for tests, which
    /// must leave no process behind. A start or stop in progress is waited for (the project's lock).
    func stopAll() async throws {
        for (listed, _, _) in try await store.projectsToReconcile() {
            let id = listed.id
            await locks.withLock("project:\(id)") {
                guard let project = try? await self.store.project(id: id) else { return }
                let running: Set<EnvironmentState> = [.starting, .active, .failed]
                if running.contains(project.state) {
                    _ = try? await self.move(projectID: id, from: running, to: .stopping, reason: "the hub stopped",
                                             desired: .inactive, record: .keep, at: Date())
                }
                let state: EnvironmentState = project.state == .deleting ? .deleting : .inactive
                await self.stop(id, to: state, from: [.stopping, state])
            }
        }
    }

    /// Moves the project in the store (see `ProjectStore.transition`) and tells event listeners.
    /// Every move is one `EnvironmentState.successors` allows, or a state's record updated in place.
    func move(
        projectID: String, from: Set<EnvironmentState>, to: EnvironmentState, reason: String,
        desired: EnvironmentState?, record: RuntimeRecordChange, at date: Date
    ) async throws -> Project? {
        assert(from.allSatisfy { $0 == to || $0.canMove(to: to) }, "illegal move from \(from) to \(to)")
        let moved = try await store.transition(
            projectID: projectID, from: from, to: to, reason: reason, desired: desired, record: record, at: date)
        if let moved { events.stateChanged(moved) }
        return moved
    }

    // MARK: The service

    func run() async throws {
        // A hub that stops before its store is ready (it cannot reach the database) has
        // nothing to reconcile or stop.
        guard (try? await cancelWhenGracefulShutdown({ try await self.storeReady.wait() })) != nil else { return }
        await reconcile(atStartup: true)
        reconciled.open()
        await removeOrphans()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.checkPeriodically() }
            group.addTask { await self.events.forwardToOtherReplicas(logger: self.logger) }
            for await job in jobs.cancelOnGracefulShutdown() {
                group.addTask { await self.perform(job) }
            }
            group.cancelAll()
        }
        if stopAllOnExit {
            logger.info("stopping every environment before exiting")
            do { try await stopAll() } catch { logger.error("stopping environments failed", metadata: ["error": "\(error)"]) }
        }
    }

    private func checkPeriodically() async {
        var lastHeartbeat = ContinuousClock.now
        var lastOrphanSweep = ContinuousClock.now
        while (try? await Task.sleep(for: checkInterval)) != nil {
            if ContinuousClock.now - lastHeartbeat >= .seconds(15) {
                events.heartbeat()
                lastHeartbeat = ContinuousClock.now
            }
            if ContinuousClock.now - lastOrphanSweep >= orphanSweepInterval {
                await removeOrphans()
                lastOrphanSweep = ContinuousClock.now
            }
            await reconcile(atStartup: false)
            // After the reconcile, which can wait for a start: what was used meanwhile counts.
            do {
                try await activity.flush(to: store)
            } catch {
                logger.warning("recording activity failed", metadata: ["error": "\(error)"])
            }
            await cullIdle()
        }
    }

    /// Stops active environments nobody used for longer than the idle timeout.
    private func cullIdle(now: Date = Date()) async {
        guard let idleTimeout, let projects = try? await store.projectsToReconcile() else { return }
        for (project, _, _) in projects where project.state == .active {
            guard now.timeIntervalSince(project.idleSince) > idleTimeout else { continue }
            logger.info("stopping an idle environment", metadata: ["project.id": "\(project.id)"])
            _ = try? await deactivate(project, reason: "stopped after \(Int(idleTimeout)) s without use")
        }
    }

    private func perform(_ job: Job) async {
        switch job {
        case .start(let id, let delay):
            if delay > .zero, (try? await Task.sleep(for: delay)) == nil { return }
            await locks.withLock("project:\(id)") { await self.start(id) }
        case .stop(let id):
            await locks.withLock("project:\(id)") { await self.stop(id, to: .inactive, from: [.stopping]) }
        case .delete(let id):
            do {
                _ = try await finishDeleting(id)
            } catch {
                logger.error("deleting a project failed", metadata: ["project.id": "\(id)", "error": "\(error)"])
            }
        }
    }

    private func start(_ id: String) async {
        guard let project = try? await store.project(id: id), project.state == .starting else { return }
        guard let template = templates.template(named: project.template) else {
            await fail(id, "template \(project.template) no longer exists")
            return
        }
        do {
            let spec = EnvironmentSpec(
                projectID: id, owner: project.owner, project: project.name, template: template, secret: try await secrets.secret(of: id))
            let events = self.events
            // A deactivation or deletion while it starts cancels the start.
            let record = try await whileStillStarting(id) { try await self.slots.withSlot(onQueued: { position in
                events.progress(id, "queued for a start slot, number \(position) in line", position: position)
            }) {
                try await self.runtime.start(spec, progress: { step in
                    switch step {
                    case .startingComponent(let name): events.progress(id, "starting \(name)")
                    case .waitingForHealth(let name):
                        let check = template.components.first { $0.name == name }?.health.description ?? "/health"
                        events.progress(id, "waiting for \(name) to answer \(check)")
                    case .componentStatus(let name, let status): events.progress(id, "\(name): \(status)")
                    case .componentReady(let name): events.progress(id, "\(name) is ready")
                    }
                }, spawned: { record in
                    // Recorded before the health checks: a hub that dies now leaves no orphans.
                    guard let json = try? JSONEncoder().encode(record) else { return }
                    _ = try? await self.store.transition(
                        projectID: id, from: [.starting], to: .starting, reason: "", desired: nil,
                        record: .set(String(decoding: json, as: UTF8.self)), at: Date())
                })
            } }
            let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
            let moved = try await move(
                projectID: id, from: [.starting], to: .active, reason: "", desired: nil, record: .set(json), at: Date())
            if moved == nil {
                // Deactivated or deleted while it started: undo.
                try await runtime.stop(project.environment, record: record)
            } else {
                logger.info("environment active", metadata: ["project.id": "\(id)", "user.name": "\(project.owner)"])
            }
        } catch is CancellationError {
            // Deactivated or deleted meanwhile, or the hub is shutting down: then the next
            // hub's reconciler finds it `starting` and starts it again.
            logger.info("a start was interrupted", metadata: ["project.id": "\(id)"])
        } catch {
            await fail(id, "\(error)")
        }
    }

    /// Runs `body` until it ends or the project leaves `starting` (deactivated or deleted
    /// meanwhile), whichever comes first; in the second case `body` is cancelled.
    private func whileStillStarting<T: Sendable>(_ id: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while true {
                    try await Task.sleep(for: .milliseconds(250))
                    if try await self.store.project(id: id)?.state != .starting { return nil }
                }
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw CancellationError() }
            return value
        }
    }

    /// Stops what runs and moves the project to `state`. When the runtime cannot stop it, a
    /// stopping project is failed with the reason and keeps its record (the next hub's
    /// reconciler tries again); a deleting one goes on to be deleted.
    func stop(_ id: String, to state: EnvironmentState, from: Set<EnvironmentState>) async {
        do {
            if let project = try await store.project(id: id) {
                try await runtime.stop(project.environment, record: await record(of: id))
            }
        } catch {
            logger.error("stopping an environment failed", metadata: ["project.id": "\(id)", "error": "\(error)"])
            let failable = from.filter { $0.canMove(to: .failed) }
            if state != .deleting, !failable.isEmpty {
                _ = try? await move(projectID: id, from: failable, to: .failed, reason: "stopping failed: \(error)", desired: nil,
                                    record: .keep, at: Date())
                return
            }
        }
        do {
            _ = try await move(projectID: id, from: from, to: state, reason: "", desired: nil, record: .clear, at: Date())
        } catch {
            logger.error("recording a stop failed", metadata: ["project.id": "\(id)", "error": "\(error)"])
        }
    }

    func fail(_ id: String, _ reason: String) async {
        logger.warning("environment failed", metadata: ["project.id": "\(id)", "reason": "\(reason)"])
        _ = try? await move(
            projectID: id, from: [.starting, .active], to: .failed, reason: reason, desired: nil, record: .clear, at: Date())
    }

    /// Removes everything the environment had and then the project. Call with the project's lock held.
    private func removeEverything(_ id: String) async throws -> Bool {
        guard let project = try await store.project(id: id) else { return false }
        try await runtime.delete(project.environment, record: await record(of: id))
        return try await store.deleteProject(id: id)
    }

    func record(of id: String) async -> EnvironmentRecord? {
        Self.decodeRecord(try? await store.runtimeRecord(projectID: id))
    }

    static func decodeRecord(_ json: String?) -> EnvironmentRecord? {
        guard let json else { return nil }
        return try? JSONDecoder().decode(EnvironmentRecord.self, from: Data(json.utf8))
    }

    private func current(
        _ project: Project, orIllegalMoveTo target: EnvironmentState, alreadyThere: Set<EnvironmentState>
    ) async throws -> (project: Project, Bool) {
        guard let now = try await store.project(id: project.id) else {
            throw EnvHubError.notFound("no project \(project.owner)/\(project.name)")
        }
        if alreadyThere.contains(now.state) { return (now, false) }
        throw Self.illegal(now, to: target)
    }

    static func illegal(_ project: Project, to target: EnvironmentState) -> EnvHubError {
        EnvHubError(code: "illegal_transition", status: 409,
                    message: "project \(project.name) cannot go from \(project.state.rawValue) to \(target.rawValue)")
    }
}

extension Project {
    /// How the runtime knows the project's environment.
    var environment: EnvironmentIdentity { EnvironmentIdentity(projectID: id, owner: owner, project: name) }
}
