import CProcessSpawn
import Dispatch
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A program a supervisor runs, with what it must wait for before starting the next one.
struct SupervisedProgram: Sendable {
    var name: String
    var argv: [String]
    var environment: [String: String]
    /// Given the program's pid, returns once the program can be used by the ones after it
    /// (a socket exists, a port answers); throws if it cannot.
    var ready: @Sendable (Int32) async throws -> Void = { _ in }
}

/// Runs programs in its own process group, sharing its output, and keeps them running:
/// - `restart: true` (desktop): a program that exits is started again after a back-off
///   (1 s, doubling to 30 s, back to 1 s once it has run for a minute);
/// - `restart: false` (postgres, initdb): when one exits the others are stopped and `run`
///   returns how it ended, so the caller (or the hub's crash handling) decides what is next.
/// SIGTERM or SIGINT stops them all with `stopSignal` (SIGKILL after `grace`) and returns `.stopped`.
struct Supervisor: Sendable {
    var programs: [SupervisedProgram]
    var restart: Bool
    var stopSignal: Int32 = SIGTERM
    var grace: Duration = .seconds(8)
    var logger: Logger

    enum Outcome: Equatable {
        /// SIGTERM or SIGINT arrived and everything was stopped.
        case stopped
        /// A program exited (`restart: false` only), with its status or 128 + the signal.
        case exited(program: String, status: Int32)
    }

    func run() async throws -> Outcome {
        let stopping = StopRequest.shared
        var running: [Int32: Int] = [:]  // pid → index in programs
        do {
            for (index, program) in programs.enumerated() {
                let pid = try spawn(program)
                running[pid] = index
                try await program.ready(pid)
            }
        } catch {
            await stopAll(Array(running.keys))
            throw error
        }
        var restartAt: [Int: ContinuousClock.Instant] = [:]
        var backoff = Array(repeating: Duration.seconds(1), count: programs.count)
        var startedAt = Array(repeating: ContinuousClock.now, count: programs.count)
        while !stopping.requested {
            while let (pid, status) = Self.reapOne() {
                guard let index = running.removeValue(forKey: pid) else { continue }
                guard restart else {
                    await stopAll(Array(running.keys))
                    return .exited(program: programs[index].name, status: Self.exitCode(status))
                }
                logger.warning("\(programs[index].name) exited with status \(Self.exitCode(status)); restarting it")
                if ContinuousClock.now - startedAt[index] > .seconds(60) { backoff[index] = .seconds(1) }
                restartAt[index] = ContinuousClock.now + backoff[index]
                backoff[index] = min(backoff[index] * 2, .seconds(30))
            }
            for (index, time) in restartAt where time <= ContinuousClock.now && !stopping.requested {
                restartAt[index] = nil
                do {
                    running[try spawn(programs[index])] = index
                    startedAt[index] = ContinuousClock.now
                } catch {
                    logger.error("cannot restart \(programs[index].name): \(error)")
                    restartAt[index] = ContinuousClock.now + backoff[index]
                }
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        await stopAll(Array(running.keys))
        return .stopped
    }

    private func spawn(_ program: SupervisedProgram) throws -> Int32 {
        let arguments = program.argv.map { strdup($0) } + [nil]
        let variables = program.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            arguments.forEach { free($0) }
            variables.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = envhub_spawn_child(program.argv[0], arguments, variables, &pid)
        guard result == 0 else {
            throw WorkloadError("cannot start \(program.name) (\(program.argv[0])): \(String(cString: strerror(result)))")
        }
        logger.info("started \(program.name) (pid \(pid))")
        return pid
    }

    /// Stops the given children, last started first, and reaps them.
    private func stopAll(_ pids: [Int32]) async {
        for pid in pids.sorted(by: >) { kill(pid, stopSignal) }
        var left = Set(pids)
        let deadline = ContinuousClock.now + grace
        while !left.isEmpty {
            while let (pid, _) = Self.reapOne() { left.remove(pid) }
            left = left.filter { kill($0, 0) == 0 }
            if left.isEmpty { break }
            if ContinuousClock.now >= deadline {
                for pid in left { kill(pid, SIGKILL) }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func reapOne() -> (Int32, Int32)? {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        return pid > 0 ? (pid, status) : nil
    }

    /// A shell's way of telling an exit status: the code, or 128 + the signal that ended it.
    private static func exitCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// Turns SIGTERM and SIGINT into a flag the supervisor polls; installed once per process.
final class StopRequest: @unchecked Sendable {  // `sources` is only kept alive, never touched after init
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let flag = Flag()
    private let sources: [DispatchSourceSignal]

    static let shared = StopRequest()

    private init() {
        let flag = self.flag
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.value.store(true, ordering: .releasing) }
            source.resume()
            return source
        }
    }

    var requested: Bool { flag.value.load(ordering: .acquiring) }
}

/// Waits for a condition a program's start makes true, with a deadline.
enum Readiness {
    static func waitFor(_ what: String, within limit: Duration = .seconds(20), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while await !condition() {
            guard ContinuousClock.now < deadline else { throw WorkloadError("\(what) did not happen within \(limit)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Programs found on PATH, or the Debian packages that provide the missing ones.
enum RequiredPrograms {
    /// Absolute paths by program name; throws naming every missing package.
    static func locate(_ programs: [(program: String, package: String)], path: String) throws -> [String: String] {
        var found: [String: String] = [:]
        var missing: [String] = []
        for (program, package) in programs {
            if let location = find(program, path: path) { found[program] = location } else { missing.append("\(program) (package \(package))") }
        }
        guard missing.isEmpty else {
            let packages = programs.filter { found[$0.program] == nil }.map(\.package)
            throw WorkloadError(
                "missing programs: \(missing.joined(separator: ", ")); install them with: apt-get install \(packages.joined(separator: " "))")
        }
        return found
    }

    static func find(_ program: String, path: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        return path.split(separator: ":").map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
