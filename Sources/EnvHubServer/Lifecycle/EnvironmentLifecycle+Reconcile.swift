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
        for (project, desired, _) in projects {
            let id = project.id
            let record = await record(of: id)
            let living = record.map { runtime.livingComponents($0) } ?? []
            let intact = record.map { living.count == $0.components.count } ?? false
            switch project.state {
            case .active where intact:
                if atStartup { logger.info("re-adopted a running environment", metadata: ["project.id": "\(id)"]) }
            case .active:
                await restartCrashed(project, record: record)
            case .starting where atStartup:
                // The previous hub died while starting it: clear what it left and start again.
                if let record { await runtime.stop(record) }
                queue.yield(.start(projectID: id, delay: .zero))
            case .stopping where atStartup:
                queue.yield(.stop(projectID: id))
            case .deleting where atStartup:
                queue.yield(.delete(projectID: id))
            case .inactive where record != nil && atStartup, .failed where record != nil && atStartup:
                // At rest but with something recorded as running: make sure it is gone.
                _ = desired
                await stop(id, to: project.state, from: [project.state])
            default:
                break
            }
        }
    }

    private func restartCrashed(_ project: Project, record: EnvironmentRecord?) async {
        let id = project.id
        let attempt = await restarts.next(id)
        if let record { await runtime.stop(record) }
        guard attempt <= crashRestartLimit else {
            let lines = runtime.lastLines(id, 10).joined(separator: "\n")
            await fail(id, "the environment crashed \(attempt) times; last output:\n\(lines)")
            return
        }
        logger.warning("environment crashed; restarting", metadata: ["project.id": "\(id)", "attempt": "\(attempt)"])
        guard (try? await move(
            projectID: id, from: [.active], to: .starting, reason: "restarting after a crash (attempt \(attempt))",
            desired: nil, record: .clear, at: Date())) != nil else { return }
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
