import EnvHubCore
import EnvHubRuntime
import EnvHubStore
import Foundation

extension EnvironmentLifecycle {
    /// The one place that makes what runs follow what the store says. At start-up it
    /// re-adopts environments whose processes still run, restarts the ones that died and
    /// finishes starts, stops and deletions that a previous hub left half done; afterwards it
    /// restarts components that crash, with back-off, until the limit, then marks them failed.
    func reconcile(atStartup: Bool) async {
        let projects: [(project: Project, desired: EnvironmentState, record: String?)]
        do {
            projects = try await store.projectsToReconcile()
        } catch {
            logger.warning("reconciling failed: the store did not answer", metadata: ["error": "\(error)"])
            return
        }
        for (project, _, json) in projects {
            let id = project.id
            let record = Self.decodeRecord(json)
            switch project.state {
            case .active:
                // Under the project's lock, so that a stop or delete queued meanwhile waits
                // for the check (which may put objects back) instead of racing it.
                await locks.withLock("project:\(id)") {
                    guard let now = try? await self.store.project(id: id), now.state == .active else { return }
                    await self.check(now, record: await self.record(of: id), atStartup: atStartup)
                }
            case .starting where atStartup:
                // The previous hub died while starting it: clear what it left and start again.
                if record != nil { try? await runtime.stop(project.environment, record: record) }
                queue.yield(.start(projectID: id, delay: .zero))
            case .stopping where atStartup:
                queue.yield(.stop(projectID: id))
            case .deleting where atStartup:
                queue.yield(.delete(projectID: id))
            case .inactive where record != nil && atStartup, .failed where record != nil && atStartup:
                // At rest but with something recorded as running: make sure it is gone.
                await stop(id, to: project.state, from: [project.state])
            default:
                break
            }
        }
    }

    /// An active environment: left alone while it runs, repaired where the runtime can,
    /// restarted when it crashed.
    /// Call with the project's lock held.
    private func check(_ project: Project, record: EnvironmentRecord?, atStartup: Bool) async {
        guard let record else { return await restartCrashed(project, record: nil, reason: "nothing is recorded as running") }
        guard let template = templates.template(named: project.template),
              let secret = try? await secrets.secret(of: project.id) else { return }
        let spec = EnvironmentSpec(projectID: project.id, owner: project.owner, project: project.name, template: template, secret: secret)
        switch await runtime.check(spec, record: record) {
        case .running:
            if atStartup { logger.info("re-adopted a running environment", metadata: ["project.id": "\(project.id)"]) }
        case .repaired(let created):
            logger.warning("put back parts of an environment that had gone",
                           metadata: ["project.id": "\(project.id)", "created": "\(created.joined(separator: ", "))"])
            // Another replica may have stopped it meanwhile, and the repair undone that.
            if let now = try? await store.project(id: project.id), now.state != .active, now.state != .starting {
                try? await runtime.stop(project.environment, record: record)
            }
        case .crashed(let reason):
            await restartCrashed(project, record: record, reason: reason)
        }
    }

    /// Every so often: what runs for projects that no longer exist is removed. Skipped when
    /// the store has no project at all, so that a hub pointed at an empty database by
    /// mistake does not remove every environment it finds.
    func removeOrphans() async {
        guard let projects = try? await store.allProjects(), !projects.isEmpty else { return }
        let existing = Set(projects.map { "\($0.owner)/\($0.name)" })
        do {
            let removed = try await runtime.removeOrphans { user, project in existing.contains("\(user)/\(project)") }
            if !removed.isEmpty {
                logger.warning("removed what ran for projects that no longer exist", metadata: ["removed": "\(removed.joined(separator: ", "))"])
            }
        } catch {
            logger.warning("looking for orphaned environments failed", metadata: ["error": "\(error)"])
        }
    }

    private func restartCrashed(_ project: Project, record: EnvironmentRecord?, reason: String) async {
        let id = project.id
        let attempt = await restarts.next(id)
        guard attempt <= crashRestartLimit else {
            let lines = await runtime.lastLines(project.environment, count: 10).joined(separator: "\n")
            if record != nil { try? await runtime.stop(project.environment, record: record) }
            await fail(id, "the environment crashed \(attempt) times (\(reason)); last output:\n\(lines)")
            return
        }
        // Moved first, stopped second: of several replicas that see the crash, only the one
        // whose move succeeds stops and restarts it. The record stays until the new start
        // replaces it, so a hub that dies in between leaves nothing unrecorded.
        guard (try? await move(
            projectID: id, from: [.active], to: .starting, reason: "restarting after a crash (attempt \(attempt)): \(reason)",
            desired: nil, record: .keep, at: Date())) != nil else { return }
        logger.warning("environment crashed; restarting", metadata: ["project.id": "\(id)", "attempt": "\(attempt)", "reason": "\(reason)"])
        if record != nil { try? await runtime.stop(project.environment, record: record) }
        // Back off: 1 s, 2 s, 4 s, …
        queue.yield(.start(projectID: id, delay: .seconds(1 << (attempt - 1))))
    }
}

/// How often each environment has been restarted after crashes since it was last activated.
actor RestartCounts {
    private var counts: [String: Int] = [:]

    func next(_ projectID: String) -> Int {
        counts[projectID, default: 0] += 1
        return counts[projectID, default: 0]
    }

    func reset(_ projectID: String) { counts[projectID] = nil }
}
