import Foundation
import Logging

/// The schema, as numbered steps applied in order and recorded in `schema_migrations`.
/// Never edit a step that has shipped; add a new one. The DDL is written so that the same
/// text runs on SQLite and PostgreSQL (TEXT, BIGINT milliseconds, BOOLEAN).
public enum Migrations {
    public struct Step: Sendable {
        public let version: Int
        public let name: String
        public let statements: [String]
    }

    public static let steps: [Step] = [
        Step(version: 1, name: "accounts and projects", statements: [
            """
            CREATE TABLE settings (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL)
            """,
            """
            CREATE TABLE users (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                display_name TEXT NOT NULL DEFAULT '',
                bio TEXT NOT NULL DEFAULT '',
                email TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                revoked_at BIGINT)
            """,
            "CREATE INDEX sessions_by_user ON sessions (user_id)",
            """
            CREATE TABLE login_failures (
                username TEXT NOT NULL,
                failed_at BIGINT NOT NULL)
            """,
            "CREATE INDEX login_failures_by_user ON login_failures (username, failed_at)",
            """
            CREATE TABLE projects (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                template TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                state TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (owner_id, name))
            """,
        ]),
        Step(version: 2, name: "environment lifecycle", statements: [
            // What the owner asked for (active or inactive), which the reconciler makes so.
            "ALTER TABLE projects ADD COLUMN desired_state TEXT NOT NULL DEFAULT 'inactive'",
            "ALTER TABLE projects ADD COLUMN state_reason TEXT NOT NULL DEFAULT ''",
            // The runtime's record of what runs (JSON), so that a restarted hub re-adopts it.
            "ALTER TABLE projects ADD COLUMN runtime_record TEXT",
        ]),
        Step(version: 3, name: "activity", statements: [
            // When the environment was last used; the idle culler stops it after a while.
            "ALTER TABLE projects ADD COLUMN last_activity BIGINT",
        ]),
        Step(version: 4, name: "auto-start", statements: [
            // Whether the gateway starts a stopped environment when its owner opens it.
            "ALTER TABLE projects ADD COLUMN auto_start BOOLEAN NOT NULL DEFAULT TRUE",
        ]),
        Step(version: 5, name: "chat", statements: [
            // `last_message_id` numbers the room's messages: taking the next number locks the
            // room's row until the message commits, so ids commit in order (see docs/chat.md).
            """
            CREATE TABLE rooms (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT NOT NULL DEFAULT '',
                created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
                created_at BIGINT NOT NULL,
                last_message_id BIGINT NOT NULL DEFAULT 0)
            """,
            // The author's name is kept with the message, so history survives a deleted account.
            """
            CREATE TABLE messages (
                room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
                id BIGINT NOT NULL,
                author_id TEXT REFERENCES users(id) ON DELETE SET NULL,
                author_name TEXT NOT NULL,
                text TEXT NOT NULL,
                idempotency_key TEXT,
                created_at BIGINT NOT NULL,
                edited_at BIGINT,
                deleted BOOLEAN NOT NULL DEFAULT FALSE,
                PRIMARY KEY (room_id, id))
            """,
            "CREATE UNIQUE INDEX messages_by_key ON messages (room_id, author_id, idempotency_key)",
            "CREATE INDEX messages_by_time ON messages (created_at)",
            // Who has joined a room (posted or read in it) and how far they have read.
            """
            CREATE TABLE room_reads (
                room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                last_read_id BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (room_id, user_id))
            """,
        ]),
        Step(version: 6, name: "agent conversations", statements: [
            // A project's messages to its agent and the agent's replies (docs/agent.md); `id`
            // counts up within the project. The conversation goes with its project.
            """
            CREATE TABLE agent_messages (
                project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                id BIGINT NOT NULL,
                role TEXT NOT NULL,
                content TEXT NOT NULL,
                author_name TEXT,
                status TEXT NOT NULL,
                error TEXT,
                reply_to BIGINT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (project_id, id))
            """,
        ]),
        Step(version: 7, name: "login failures per client", statements: [
            "ALTER TABLE login_failures ADD COLUMN client TEXT NOT NULL DEFAULT ''",
            "DROP INDEX login_failures_by_user",
            "CREATE INDEX login_failures_by_user_and_client ON login_failures (username, client, failed_at)",
        ]),
    ]

    /// Applies the steps not yet applied, all in one transaction. On PostgreSQL replicas that
    /// start together take turns (`takeTurn`). Returns the versions it applied.
    @discardableResult
    public static func run(on database: any SQLDatabase, now: Date = Date(), logger: Logger? = nil) async throws -> [Int] {
        let kind = database.kind
        return try await database.transaction { sql in
            if kind == .postgres { try await takeTurn(sql, logger: logger) }
            // In the turn: two replicas creating the table at once on a new database would
            // collide in PostgreSQL's catalog, and one of them fail.
            try await sql.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL)
                """)
            let applied = Set(try await sql.query("SELECT version FROM schema_migrations").map { try $0.int("version") })
            var done: [Int] = []
            for step in steps where !applied.contains(Int64(step.version)) {
                for statement in step.statements {
                    try await sql.query(statement)
                }
                try await sql.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    [.int(Int64(step.version)), .text(step.name), .date(now)])
                done.append(step.version)
            }
            return done
        }
    }

    /// The PostgreSQL advisory lock that replicas migrating the same database take turns on.
    public static let lockKey: Int64 = 7_413_001

    /// Takes the migration lock for the transaction `sql`, asking every 200 ms instead of
    /// waiting inside the server: a wait there could be neither logged nor cancelled, so a hub
    /// whose turn did not come (another replica migrating, a session left holding the lock)
    /// said nothing and ignored SIGTERM. Throws `CancellationError` when its task is cancelled.
    private static func takeTurn(_ sql: any SQLExecutor, logger: Logger?) async throws {
        var attempts = 0
        while try await sql.query("SELECT pg_try_advisory_xact_lock(\(lockKey)) AS locked").first?.bool("locked") != true {
            if attempts % 50 == 0 { logger?.notice("waiting for another replica to finish migrating the database") }
            attempts += 1
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The highest version this build knows.
    public static var latestVersion: Int { steps.map(\.version).max() ?? 0 }
}
