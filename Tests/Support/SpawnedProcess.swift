import CProcessSpawn
import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// A program the tests start: stdin from a string, stdout and stderr together in a file
/// that `output` reads. Started with posix_spawn (`envhub_spawn_with_input`), not Foundation's
/// `Process`, whose `run()` walks /proc/self/fd and crashed doing so in the test process,
/// which holds a thousand sockets that other tests open and close meanwhile.
public final class SpawnedProcess: Sendable {
    public let pid: Int32
    private let outputFile: URL
    private let directory: URL

    public init(_ executable: String, _ arguments: [String], environment: [String: String], stdin: String? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("spawned-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let input = directory.appendingPathComponent("stdin")
        outputFile = directory.appendingPathComponent("output")
        try Data((stdin ?? "").utf8).write(to: input)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = envhub_spawn_with_input(executable, argv, envp, input.path, outputFile.path, &pid)
        guard result == 0 else { throw TestSetupError("cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Everything written so far.
    public var output: String {
        (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
    }

    /// The exit status once it has exited (a signal counts as 128 + its number), else nil.
    public func exitStatus() -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return cachedStatus.withLockedValue { $0 } }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        cachedStatus.withLockedValue { $0 = code }
        return code
    }

    /// Waits for it to exit, failing after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await waitFor("\(pid) to exit", timeout: timeout) { exitStatus() }
    }

    public func signal(_ signal: Int32) { _ = kill(pid, signal) }

    private let cachedStatus = NIOLockedValueBox<Int32?>(nil)
}
