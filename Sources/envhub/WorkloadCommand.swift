import ArgumentParser
import EnvHubWorkloads
import Hummingbird
import Logging

struct WorkloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "Run a built-in workload (the apps the built-in templates start).",
        discussion: """
            Each listens on HOST:PORT (127.0.0.1:8080 by default), answers under BASE_PATH as \
            well as at /, and has GET /health. hello: GET / greets USER_ID. athlete: GET / names \
            FAVORITE_ATHLETE; other methods get 405. agent: POST /reply streams server-sent \
            events; AGENT_LLM_URL, AGENT_LLM_MODEL and AGENT_LLM_KEY relay to an \
            OpenAI-compatible model instead of the built-in commands. data: GET and POST /data \
            store JSON documents in the PostgreSQL at DATABASE_URL. postgres: a PostgreSQL \
            server (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, data in PGDATA or \
            VOLUME_DIR/pgdata), initialised on first start. desktop: Xvfb, openbox, xterm, \
            x11vnc and websockify serving noVNC on PORT (RESOLUTION, NOVNC_DIR).
            """)

    @Argument(help: "One of: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")).")
    var name: String

    func run() async throws {
        guard let workload = Workload(rawValue: name) else {
            throw ValidationError("no workload '\(name)'; choose one of \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let environment = try WorkloadEnvironment()
        var logger = Logger(label: "envhub-\(name)")
        logger.logLevel = .info
        try await workload.run(environment, logger: logger)
    }
}
