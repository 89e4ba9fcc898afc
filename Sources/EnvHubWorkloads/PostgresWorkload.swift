import Foundation
import Logging
import NIOPosix
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server from Debian's binaries, configured like the official image:
/// `POSTGRES_USER` (default `postgres`), `POSTGRES_PASSWORD` (required), `POSTGRES_DB`
/// (default: the user), data in `PGDATA` (default `$VOLUME_DIR/pgdata`, else `./pgdata`).
/// The first start runs initdb (password authentication, scram-sha-256); later starts reuse
/// the cluster. It listens on HOST:PORT only, with no Unix socket. PostgreSQL refuses to run
/// as root, so under root it runs as the `postgres` user (through `setpriv`). SIGTERM stops it
/// with a fast shutdown; if it dies, this process exits so the hub's crash handling restarts it.
struct PostgresWorkload {
    let environment: WorkloadEnvironment
    let logger: Logger

    func run() async throws {
        let variables = environment.variables
        guard let password = variables["POSTGRES_PASSWORD"], !password.isEmpty else {
            throw WorkloadError("POSTGRES_PASSWORD must be set")
        }
        let user = variables["POSTGRES_USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "postgres"
        let database = variables["POSTGRES_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? user
        let binaries = try Self.serverBinaries(variables)
        let account = try ServerAccount.current(variables)
        let data = URL(fileURLWithPath: variables["PGDATA"]
            ?? (variables["VOLUME_DIR"].map { $0 + "/pgdata" } ?? FileManager.default.currentDirectoryPath + "/pgdata"))
        try account.checkCanReach(data.deletingLastPathComponent())
        if !FileManager.default.fileExists(atPath: data.appendingPathComponent("PG_VERSION").path) {
            try await initialize(data, binaries: binaries, user: user, password: password, account: account)
        }
        let server = SupervisedProgram(
            name: "postgres",
            argv: account.prefix + [binaries + "/postgres", "-D", data.path,
                                    "-c", "listen_addresses=\(environment.host)", "-c", "port=\(environment.port)",
                                    "-c", "unix_socket_directories="],
            environment: ["PATH": variables["PATH"] ?? "/usr/bin:/bin", "LANG": "C.UTF-8"]
        ) { [environment, logger] _ in
            try await Self.ensureDatabase(database, user: user, password: password, environment: environment, logger: logger)
        }
        let outcome = try await Supervisor(programs: [server], restart: false, stopSignal: SIGINT, grace: .seconds(20), logger: logger).run()
        if case .exited(_, let status) = outcome {
            throw WorkloadError("postgres exited with status \(status)")
        }
    }

    /// initdb into a sibling directory, renamed into place only when it succeeded, so that an
    /// interrupted first start never leaves a half-made cluster behind.
    private func initialize(_ data: URL, binaries: String, user: String, password: String, account: ServerAccount) async throws {
        let fileManager = FileManager.default
        let parent = data.deletingLastPathComponent()
        let fresh = parent.appendingPathComponent(data.lastPathComponent + ".initdb")
        let passwordFile = parent.appendingPathComponent(".pgpass-initdb")
        try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        try? fileManager.removeItem(at: fresh)
        try fileManager.createDirectory(at: fresh, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        fileManager.createFile(atPath: passwordFile.path, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        defer { try? fileManager.removeItem(at: passwordFile) }
        try account.own(fresh)
        try account.own(passwordFile)
        logger.info("creating the database cluster in \(data.path)")
        let initdb = SupervisedProgram(
            name: "initdb",
            argv: account.prefix + [binaries + "/initdb", "-D", fresh.path, "--username=\(user)", "--pwfile=\(passwordFile.path)",
                                    "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"],
            environment: ["PATH": environment.variables["PATH"] ?? "/usr/bin:/bin", "LANG": "C.UTF-8"])
        switch try await Supervisor(programs: [initdb], restart: false, logger: logger).run() {
        case .exited(_, status: 0): break
        case .exited(_, let status): throw WorkloadError("initdb failed with status \(status); its output is above")
        case .stopped: throw WorkloadError("stopped while creating the database cluster")
        }
        try fileManager.moveItem(at: fresh, to: data)
    }

    /// Creates the database once the server accepts connections (idempotent: every start checks).
    private static func ensureDatabase(
        _ database: String, user: String, password: String, environment: WorkloadEnvironment, logger: Logger
    ) async throws {
        let configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: environment.port, username: user, password: password, database: "postgres", tls: .disable)
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
                do {
                    try await createIfMissing(database, on: connection, logger: logger)
                    try await connection.close()
                    return
                } catch {
                    try? await connection.close()
                    throw error
                }
            } catch {
                guard ContinuousClock.now < deadline else { throw WorkloadError("PostgreSQL did not accept connections: \(error)") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private static func createIfMissing(_ database: String, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query("SELECT 1 FROM pg_database WHERE datname = \(database)", logger: logger)
        for try await _ in rows { return }
        let quoted = "\"" + database.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(quoted)"), logger: logger)
        logger.info("created database \(database)")
    }

    /// The directory with `initdb` and `postgres`: `POSTGRES_BIN_DIR`, else Debian's newest
    /// `/usr/lib/postgresql/N/bin`, else the directory of `postgres` on PATH.
    static func serverBinaries(_ variables: [String: String], debianRoot: String = "/usr/lib/postgresql") throws -> String {
        let fileManager = FileManager.default
        func complete(_ directory: String) -> Bool {
            fileManager.isExecutableFile(atPath: directory + "/initdb") && fileManager.isExecutableFile(atPath: directory + "/postgres")
        }
        if let directory = variables["POSTGRES_BIN_DIR"] {
            guard complete(directory) else { throw WorkloadError("POSTGRES_BIN_DIR \(directory) has no initdb and postgres") }
            return directory
        }
        let versions = ((try? fileManager.contentsOfDirectory(atPath: debianRoot)) ?? []).compactMap(Int.init).sorted(by: >)
        if let newest = versions.map({ "\(debianRoot)/\($0)/bin" }).first(where: complete) { return newest }
        if let onPath = RequiredPrograms.find("postgres", path: variables["PATH"] ?? ""),
           complete((onPath as NSString).deletingLastPathComponent) {
            return (onPath as NSString).deletingLastPathComponent
        }
        throw WorkloadError(
            "PostgreSQL's server programs (initdb, postgres) are not installed; install them with: apt-get install postgresql")
    }
}

/// Who the server runs as: this process's user, or `postgres` when this process is root.
struct ServerAccount {
    var uid: uid_t
    var gid: gid_t
    /// What to put before a server program's argv to run it as this account.
    var prefix: [String]

    static func current(_ variables: [String: String]) throws -> ServerAccount {
        guard geteuid() == 0 else { return ServerAccount(uid: geteuid(), gid: getegid(), prefix: []) }
        guard let entry = getpwnam("postgres") else {
            throw WorkloadError("PostgreSQL does not run as root and there is no 'postgres' user; run envhub as a normal user "
                + "or install Debian's postgresql package, which creates it")
        }
        guard let setpriv = RequiredPrograms.find("setpriv", path: variables["PATH"] ?? "/usr/bin:/bin") else {
            throw WorkloadError("running PostgreSQL as 'postgres' needs setpriv; install it with: apt-get install util-linux")
        }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        return ServerAccount(uid: uid, gid: gid, prefix: [setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"])
    }

    func own(_ url: URL) throws {
        guard uid != geteuid() else { return }
        guard chown(url.path, uid, gid) == 0 else { throw WorkloadError("cannot give \(url.path) to uid \(uid): \(String(cString: strerror(errno)))") }
    }

    /// Under root the server's user must be able to enter every directory above its data.
    func checkCanReach(_ directory: URL) throws {
        guard uid != geteuid() else { return }
        var path = directory.standardizedFileURL.path
        while !path.isEmpty && path != "/" {
            var info = stat()
            if stat(path, &info) == 0, info.st_uid != uid, info.st_mode & S_IXOTH == 0 {
                throw WorkloadError("the postgres user cannot enter \(path); allow it (chmod o+x \(path)) or keep envhub's data elsewhere")
            }
            path = (path as NSString).deletingLastPathComponent
        }
    }
}
