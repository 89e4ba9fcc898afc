import EnvHubCore
import Foundation

extension SQLStore: UserStore {
    static let userColumns = "id, name, role, display_name, bio, email, created_at, updated_at"

    public func createUser(name: UserName, role: Role, passwordHash: String, profile: Profile, at date: Date) async throws -> User {
        let user = User(id: Self.newID(), name: name, role: role, profile: profile, createdAt: date, updatedAt: date)
        try await Self.conflictOnDuplicate("user \(name) already exists") {
            try await database.query(
                """
                INSERT INTO users (id, name, role, password_hash, display_name, bio, email, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                [.text(user.id), .text(name.rawValue), .text(role.rawValue), .text(passwordHash),
                 .text(profile.displayName), .text(profile.bio), .optionalText(profile.email), .date(date), .date(date)])
        }
        return user
    }

    public func user(named name: UserName) async throws -> User? {
        try await database.query("SELECT \(Self.userColumns) FROM users WHERE name = $1", [.text(name.rawValue)])
            .first.map(Self.user(from:))
    }

    public func credentials(of name: UserName) async throws -> (user: User, passwordHash: String)? {
        guard let row = try await database.query(
            "SELECT \(Self.userColumns), password_hash FROM users WHERE name = $1", [.text(name.rawValue)]).first
        else { return nil }
        return (try Self.user(from: row), try row.text("password_hash"))
    }

    public func users() async throws -> [User] {
        try await database.query("SELECT \(Self.userColumns) FROM users ORDER BY name").map(Self.user(from:))
    }

    public func countUsers() async throws -> Int {
        Int(try await database.query("SELECT COUNT(*) AS n FROM users").first?.int("n") ?? 0)
    }

    public func updateUser(named name: UserName, profile: Profile, role: Role, at date: Date) async throws -> User? {
        try await write { sql in
            let user = try await sql.query(
                """
                UPDATE users SET display_name = $1, bio = $2, email = $3, role = $4, updated_at = $5
                WHERE name = $6 RETURNING \(Self.userColumns)
                """,
                [.text(profile.displayName), .text(profile.bio), .optionalText(profile.email), .text(role.rawValue),
                 .date(date), .text(name.rawValue)]
            ).first.map(Self.user(from:))
            return (user, user.map { [.user(id: $0.id)] } ?? [])
        }
    }

    public func changePassword(of name: UserName, passwordHash: String, keeping sessionID: String?, at date: Date) async throws -> Bool {
        try await write { sql in
            guard let row = try await sql.query(
                "UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3 RETURNING id",
                [.text(passwordHash), .date(date), .text(name.rawValue)]).first
            else { return (false, []) }
            let id = try row.text("id")
            try await sql.query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
                [.date(date), .text(id), .text(sessionID ?? "")])
            return (true, [.user(id: id)])
        }
    }

    public func deleteUser(named name: UserName) async throws -> Bool {
        // Foreign keys cascade to sessions and projects.
        try await write { sql in
            guard let row = try await sql.query("DELETE FROM users WHERE name = $1 RETURNING id", [.text(name.rawValue)]).first else {
                return (false, [])
            }
            let id = try row.text("id")
            return (true, [.user(id: id), .projects(ownerID: id)])
        }
    }

    static func user(from row: SQLRow) throws -> User {
        let name = try row.text("name")
        guard let userName = UserName(rawValue: name), let role = Role(rawValue: try row.text("role")) else {
            throw SQLDriverError.unexpectedColumn("name/role", "a valid user")
        }
        return User(
            id: try row.text("id"), name: userName, role: role,
            profile: Profile(displayName: try row.text("display_name"), bio: try row.text("bio"), email: try row.optionalText("email")),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }
}

extension SQLStore: SessionStore {
    public func createSession(_ session: Session) async throws {
        try await database.query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5)",
            [.text(session.id), .text(session.userID), .date(session.createdAt), .date(session.expiresAt),
             session.revokedAt.map(SQLValue.date) ?? .null])
    }

    public func session(id: String) async throws -> (session: Session, user: User)? {
        let columns = Self.userColumns.split(separator: ",").map { "u.\($0.trimmingCharacters(in: .whitespaces))" }
        guard let row = try await database.query(
            """
            SELECT s.id AS session_id, s.created_at AS session_created_at, s.expires_at, s.revoked_at,
                   \(columns.joined(separator: ", "))
            FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1
            """, [.text(id)]).first
        else { return nil }
        let user = try Self.user(from: row)
        let session = Session(
            id: try row.text("session_id"), userID: user.id, createdAt: try row.date("session_created_at"),
            expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at"))
        return (session, user)
    }

    public func revokeSession(id: String, at date: Date) async throws {
        try await write { sql in
            let rows = try await sql.query(
                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING user_id",
                [.date(date), .text(id)])
            return ((), try rows.map { .user(id: try $0.text("user_id")) })
        }
    }

    public func deleteSessions(expiredBefore date: Date) async throws -> Int {
        try await database.query("DELETE FROM sessions WHERE expires_at < $1 RETURNING id", [.date(date)]).count
    }
}

extension SQLStore: LoginFailureStore {
    public func recordLoginFailure(username: String, client: String, at date: Date) async throws {
        try await database.query(
            "INSERT INTO login_failures (username, client, failed_at) VALUES ($1, $2, $3)",
            [.text(username), .text(client), .date(date)])
    }

    public func loginFailures(username: String, client: String, since date: Date) async throws -> [Date] {
        try await database.query(
            "SELECT failed_at FROM login_failures WHERE username = $1 AND client = $2 AND failed_at >= $3 ORDER BY failed_at",
            [.text(username), .text(client), .date(date)]
        ).map { try $0.date("failed_at") }
    }

    public func clearLoginFailures(username: String, client: String) async throws {
        try await database.query("DELETE FROM login_failures WHERE username = $1 AND client = $2", [.text(username), .text(client)])
    }

    public func deleteLoginFailures(before date: Date) async throws -> Int {
        try await database.query("DELETE FROM login_failures WHERE failed_at < $1 RETURNING username", [.date(date)]).count
    }
}
