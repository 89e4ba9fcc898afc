import CProcessSpawn
import EnvHubCore
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Runs environments as local processes: each component is the leader of its own process
/// group, in the project's directory under `root`, on a free loopback port, with its output
/// appended to `logs/{component}.log`. For one machine whose local accounts are trusted:
/// processes bind 127.0.0.1 and are not isolated from each other.
public struct LocalRuntime: EnvironmentRuntime {
    public let root: URL
    /// The running envhub binary, for `{{envhub}}` in template commands.
    public let envhubBinary: String
    /// How long a component may take to exit after SIGTERM before it gets SIGKILL.
    public let stopGrace: Duration
    /// The hub's own environment, of which components get only a few variables (`ComponentEnvironment`).
    let hubEnvironment: [String: String]
    let logger: Logger

    public init(
        root: URL, envhubBinary: String, stopGrace: Duration = .seconds(10),
        hubEnvironment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) {
        self.root = root
        self.envhubBinary = envhubBinary
        self.stopGrace = stopGrace
        self.hubEnvironment = hubEnvironment
        self.logger = logger
    }

    public var kind: String { "local" }
    public var summary: String { "local processes under \(root.path)" }

    public func directory(of projectID: String) -> URL { root.appendingPathComponent(projectID) }

    /// Starts every component, then waits for each to answer its health path within the
    /// template's timeout. On failure nothing is left running and the error carries the reason
    /// and the last lines of output.
    /// `spawned` hears the record once every process runs, before the health checks.
    public func start(
        _ spec: EnvironmentSpec, progress: @escaping @Sendable (StartStep) -> Void = { _ in },
        spawned: @escaping @Sendable (EnvironmentRecord) async -> Void = { _ in }
    ) async throws -> EnvironmentRecord {
        let directory = directory(of: spec.projectID)
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let ports = try spec.template.components.map { _ in try FreePort.pick() }
        var placeholders = Placeholders(
            user: spec.owner.rawValue, project: spec.project.rawValue, secret: ProjectSecret.written(in: directory) ?? spec.secret,
            endpoints: Dictionary(uniqueKeysWithValues: zip(spec.template.components.map(\.name), ports.map { ("127.0.0.1", $0) })))
        var started: [ComponentRecord] = []
        do {
            for (index, component) in spec.template.components.enumerated() {
                progress(.startingComponent(component.name))
                var volume: URL?
                if component.volume != nil {
                    volume = directory.appendingPathComponent("volumes").appendingPathComponent(component.name)
                    try FileManager.default.createDirectory(at: volume!, withIntermediateDirectories: true)
                }
                let environment = ComponentEnvironment.variables(
                    for: component, at: index, ports: ports, spec: spec, placeholders: placeholders, volume: volume,
                    base: hubEnvironment)
                placeholders.envhub = envhubBinary
                let argv = component.command.map(placeholders.fill)
                placeholders.envhub = nil
                let pid = try spawn(argv, environment: environment, directory: directory,
                                    log: logs.appendingPathComponent("\(component.name).log"))
                guard let entry = ProcessTable.entry(pid: pid) else {
                    ProcessTable.reap(pid)
                    throw RuntimeError("\(component.name) exited at once", lastLogLines: lastLines(spec.projectID, 20))
                }
                started.append(ComponentRecord(name: component.name, pid: pid, startTime: entry.startTime, port: ports[index]))
            }
            await spawned(EnvironmentRecord(components: started, exposed: spec.template.expose))
            let deadline = ContinuousClock.now + .seconds(spec.template.startTimeoutSeconds)
            for (record, component) in zip(started, spec.template.components) {
                progress(.waitingForHealth(component.name))
                try await waitUntilHealthy(record, check: component.health, deadline: deadline, spec: spec, all: started)
                progress(.componentReady(component.name))
            }
        } catch {
            // A cancelled start still stops what it started; the stop must not be cancelled
            // with it, so it runs as its own task, awaited here.
            let record = EnvironmentRecord(components: started, exposed: spec.template.expose)
            await Task { await self.stop(record) }.value
            throw error
        }
        return EnvironmentRecord(components: started, exposed: spec.template.expose)
    }

    public func stop(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async {
        if let record { await stop(record) }
    }

    /// SIGTERM to every component's process group, SIGKILL to what is left after the grace
    /// period; returns when no process of the environment remains.
    public func stop(_ record: EnvironmentRecord) async {
        let groups = record.components.filter(isRunning).compactMap(\.pid)
        for group in groups { kill(-group, SIGTERM) }
        let deadline = ContinuousClock.now + stopGrace
        while ContinuousClock.now < deadline, !allGone(groups) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let survivors = groups.filter { !ProcessTable.members(ofGroup: $0).isEmpty }
        if !survivors.isEmpty {
            logger.warning("components ignored SIGTERM; killing them", metadata: ["process.groups": "\(survivors)"])
            for group in survivors { kill(-group, SIGKILL) }
            while !allGone(survivors) { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Stops the environment and removes its directory.
    public func delete(_ environment: EnvironmentIdentity, record: EnvironmentRecord?) async throws {
        if let record { await stop(record) }
        let directory = directory(of: environment.projectID)
        if FileManager.default.fileExists(atPath: directory.path) {
            try FileManager.default.removeItem(at: directory)
        }
    }

    /// Which recorded components are still the processes that were started.
    public func livingComponents(_ record: EnvironmentRecord) -> [String] {
        record.components.filter { component in
            if let pid = component.pid { ProcessTable.reap(pid) }
            return isRunning(component)
        }.map(\.name)
    }

    /// Crashed when a component's process has gone; a local process cannot be put back
    /// without a restart.
    public func check(_ spec: EnvironmentSpec, record: EnvironmentRecord) async -> EnvironmentCheck {
        let living = Set(livingComponents(record))
        let gone = record.components.map(\.name).filter { !living.contains($0) }
        return gone.isEmpty ? .running : .crashed("\(gone.joined(separator: ", ")) exited")
    }

    /// Nothing to do: a project's processes and directory go with its deletion, which the
    /// reconciler finishes after a crash; nothing else makes them.
    public func removeOrphans(exists: @Sendable (_ user: String, _ project: String) -> Bool) async throws -> [String] { [] }

    public func lastLines(_ environment: EnvironmentIdentity, count: Int) async -> [String] {
        lastLines(environment.projectID, count)
    }

    /// Polls the log files five times a second.
    public func followLogs(_ environment: EnvironmentIdentity) -> AsyncStream<String> {
        let logs = directory(of: environment.projectID).appendingPathComponent("logs")
        return AsyncStream { continuation in
            let task = Task {
                var follower = LogFollower(directory: logs)
                while !Task.isCancelled {
                    for line in follower.newLines() { continuation.yield(line) }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func isRunning(_ component: ComponentRecord) -> Bool {
        guard let pid = component.pid, let startTime = component.startTime else { return false }
        return ProcessTable.isAlive(pid: pid, startTime: startTime)
    }

    /// The last `count` lines each component wrote, prefixed with its name, oldest first per component.
    public func lastLines(_ projectID: String, _ count: Int) -> [String] {
        let logs = directory(of: projectID).appendingPathComponent("logs")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: logs.path)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return files.flatMap { file in
            LogTail.lines(of: logs.appendingPathComponent(file), count: count).map { "[\(file.dropLast(4))] \($0)" }
        }
    }

    private func allGone(_ groups: [Int32]) -> Bool {
        groups.allSatisfy { group in
            ProcessTable.reap(group)
            return ProcessTable.members(ofGroup: group).isEmpty
        }
    }

    /// Waits for `record` to pass its health check; fails when it, or any other component
    /// of `all` (one that passed its check already, say), exits meanwhile.
    private func waitUntilHealthy(
        _ record: ComponentRecord, check: HealthCheck, deadline: ContinuousClock.Instant, spec: EnvironmentSpec, all: [ComponentRecord]
    ) async throws {
        let began = ContinuousClock.now
        let healthPath = check.description
        while true {
            if await HealthProbe.isHealthy(port: record.port, check: check) { return }
            for component in all {
                if let pid = component.pid { ProcessTable.reap(pid) }
                guard isRunning(component) else {
                    let reason = component.name == record.name
                        ? "\(record.name) exited before it answered \(healthPath)"
                        : "\(component.name) exited while \(record.name) was starting"
                    throw RuntimeError(reason, lastLogLines: lastLines(spec.projectID, 20))
                }
            }
            guard ContinuousClock.now < deadline else {
                throw RuntimeError(
                    "\(record.name) did not answer \(healthPath) with 2xx within \(spec.template.startTimeoutSeconds) s",
                    lastLogLines: lastLines(spec.projectID, 20))
            }
            // Most components are up within a second: ask often then, rarely after.
            try await Task.sleep(for: ContinuousClock.now - began < .seconds(1) ? .milliseconds(5) : .milliseconds(50))
        }
    }

    private func spawn(_ argv: [String], environment: [String: String], directory: URL, log: URL) throws -> Int32 {
        let arguments = argv.map { strdup($0) } + [nil]
        let variables = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            arguments.forEach { free($0) }
            variables.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = envhub_spawn(argv[0], arguments, variables, directory.path, log.path, &pid)
        guard result == 0 else {
            throw RuntimeError("cannot start \(argv[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }
}
