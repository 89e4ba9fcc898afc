import EnvHubRuntime
import Foundation
import Logging

/// The Linux desktop: Xvfb on a free display, openbox, an xterm, x11vnc on a loopback port
/// (no password: only the hub reaches it) and websockify serving noVNC's files and the VNC
/// WebSocket on `PORT`. Children that die are restarted; SIGTERM stops them all.
/// `RESOLUTION` (default 1280x800x24) sets the screen; `NOVNC_DIR` where noVNC's files are
/// (default /usr/share/novnc). `HOME` is the project's directory, so files persist.
struct DesktopWorkload {
    static let programs: [(program: String, package: String)] = [
        ("Xvfb", "xvfb"), ("openbox", "openbox"), ("xterm", "xterm"), ("x11vnc", "x11vnc"), ("websockify", "websockify"),
    ]

    let environment: WorkloadEnvironment
    let logger: Logger

    func run() async throws {
        let variables = environment.variables
        let found = try RequiredPrograms.locate(Self.programs, path: variables["PATH"] ?? "/usr/bin:/bin")
        let novnc = variables["NOVNC_DIR"] ?? "/usr/share/novnc"
        guard FileManager.default.fileExists(atPath: novnc + "/vnc.html") else {
            throw WorkloadError("noVNC's files are not in \(novnc); install them with: apt-get install novnc")
        }
        let web = try Self.webDirectory(serving: novnc)
        let resolution = variables["RESOLUTION"] ?? "1280x800x24"
        guard resolution.split(separator: "x").count == 3, resolution.split(separator: "x").allSatisfy({ Int($0) != nil }) else {
            throw WorkloadError("RESOLUTION must look like 1280x800x24, not '\(resolution)'")
        }
        let display = try Self.freeDisplay()
        let vncPort = try FreePort.pick()
        var childEnvironment = variables.filter { ["PATH", "LANG", "LC_ALL", "TZ", "USER_ID", "PROJECT_ID"].contains($0.key) }
        childEnvironment["DISPLAY"] = ":\(display)"
        childEnvironment["HOME"] = FileManager.default.currentDirectoryPath

        func program(_ name: String, _ arguments: [String], ready: @escaping @Sendable (Int32) async throws -> Void = { _ in }) -> SupervisedProgram {
            SupervisedProgram(name: name, argv: [found[name] ?? name] + arguments, environment: childEnvironment, ready: ready)
        }
        let supervisor = Supervisor(
            programs: [
                program("Xvfb", [":\(display)", "-screen", "0", resolution, "-nolisten", "tcp"]) { pid in
                    // Ready when the display's lock names our server: a display another desktop
                    // took first must never be mistaken for ours.
                    try await Readiness.waitFor("Xvfb serving display :\(display)") {
                        Self.lockOwner(display: display) == pid && FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(display)")
                    }
                },
                program("openbox", []),
                program("xterm", []),
                program("x11vnc", [
                    // -rfbportv6 -1: without it x11vnc 0.9.16 also listens on [::]:5900, -noipv6 notwithstanding.
                    "-display", ":\(display)", "-rfbport", String(vncPort), "-rfbportv6", "-1", "-listen", "127.0.0.1", "-noipv6",
                    "-forever", "-shared", "-nopw", "-quiet",
                ]) { _ in
                    try await Readiness.waitFor("x11vnc listening on port \(vncPort)") { await HealthProbe.accepts(port: vncPort) }
                },
                program("websockify", ["--web", web, "\(environment.host):\(environment.port)", "127.0.0.1:\(vncPort)"]),
            ],
            restart: true, logger: logger)
        logger.info("desktop on display :\(display), VNC on 127.0.0.1:\(vncPort), noVNC on \(environment.host):\(environment.port)")
        _ = try await supervisor.run()
    }

    /// noVNC's files as websockify serves them: Debian's package lacks the `package.json` the
    /// UI fetches for its version (a 404 in every console), so a directory in the project's
    /// own links to each file and adds one when it is missing.
    static func webDirectory(serving novnc: String) throws -> String {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: novnc + "/package.json") else { return novnc }
        let web = fileManager.currentDirectoryPath + "/novnc-web"
        try? fileManager.removeItem(atPath: web)
        try fileManager.createDirectory(atPath: web, withIntermediateDirectories: true)
        for entry in try fileManager.contentsOfDirectory(atPath: novnc) {
            try fileManager.createSymbolicLink(atPath: web + "/" + entry, withDestinationPath: novnc + "/" + entry)
        }
        try Data(#"{"name": "@novnc/novnc", "version": "packaged"}"#.utf8).write(to: URL(fileURLWithPath: web + "/package.json"))
        return web
    }

    /// A display number in 100..<1000 with neither a lock file nor a socket, searched from a
    /// random point so that desktops starting together rarely pick the same one. If another
    /// takes it first, our Xvfb exits and this start fails saying so; the next start picks again.
    static func freeDisplay() throws -> Int {
        let offset = Int.random(in: 0..<900)
        for step in 0..<900 {
            let number = 100 + (offset + step) % 900
            if !FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock")
                && !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)") {
                return number
            }
        }
        throw WorkloadError("no free X display between :100 and :999")
    }

    /// The pid written in an X server's lock file.
    static func lockOwner(display: Int) -> Int32? {
        (try? String(contentsOfFile: "/tmp/.X\(display)-lock", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
