import EnvHubCore
import Foundation

extension SQLStore: ProjectStore {
    private static let projectSelect = """
        SELECT p.id, p.owner_id, u.name AS owner_name, p.name, p.template, p.description, p.state,
               p.state_reason, p.desired_state, p.runtime_record, p.last_activity, p.auto_start, p.created_at, p.updated_at
        FROM projects p JOIN users u ON u.id = p.owner_id
        """

    public func createProject(_ project: Project) async throws -> Project {
        try await Self.conflictOnDuplicate("project \(project.owner)/\(project.name) already exists") {
            try await write { sql in
                try await sql.query(
                    """
                    INSERT INTO projects (id, owner_id, name, template, description, state, auto_start, created_at, updated_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    """,
                    [.text(project.id), .text(project.ownerID), .text(project.name.rawValue), .text(project.template),
                     .text(project.description), .text(project.state.rawValue), .bool(project.autoStart),
                     .date(project.createdAt), .date(project.updatedAt)])
                return (project, [.projects(ownerID: project.ownerID)])
            }
        }
    }

    public func projects(ownedBy owner: UserName) async throws -> [Project] {
        try await database.query("\(Self.projectSelect) WHERE u.name = $1 ORDER BY p.name", [.text(owner.rawValue)])
            .map(Self.project(from:))
    }

    public func allProjects() async throws -> [Project] {
        try await database.query("\(Self.projectSelect) ORDER BY u.name, p.name").map(Self.project(from:))
    }

    public func project(owner: UserName, name: ProjectName) async throws -> Project? {
        try await database.query(
            "\(Self.projectSelect) WHERE u.name = $1 AND p.name = $2", [.text(owner.rawValue), .text(name.rawValue)]
        ).first.map(Self.project(from:))
    }

    public func project(id: String) async throws -> Project? {
        try await database.query("\(Self.projectSelect) WHERE p.id = $1", [.text(id)]).first.map(Self.project(from:))
    }

    public func updateProject(_ project: Project) async throws -> Project? {
        try await Self.conflictOnDuplicate("project \(project.owner)/\(project.name) already exists") {
            try await write { sql in
                // The state condition makes the check and the write one step, so a start that
                // happens meanwhile cannot be renamed away from under its environment.
                let updated = try await sql.query(
                    """
                    UPDATE projects SET name = $1, template = $2, description = $3, updated_at = $4, auto_start = $6
                    WHERE id = $5 AND (state IN ('inactive', 'failed') OR (name = $1 AND template = $2))
                    RETURNING owner_id, state
                    """,
                    [.text(project.name.rawValue), .text(project.template), .text(project.description),
                     .date(project.updatedAt), .text(project.id), .bool(project.autoStart)])
                if let row = updated.first {
                    var saved = project
                    if let state = EnvironmentState(rawValue: try row.text("state")) { saved.state = state }
                    return (saved, [.projects(ownerID: try row.text("owner_id"))])
                }
                guard let current = try await sql.query("SELECT state FROM projects WHERE id = $1", [.text(project.id)]).first else {
                    return (nil, [])
                }
                throw EnvHubError.conflict(
                    "project \(project.name) is \(try current.text("state")); deactivate it before renaming it or changing its template")
            }
        }
    }

    public func deleteProject(id: String) async throws -> Bool {
        try await write { sql in
            let deleted = try await sql.query("DELETE FROM projects WHERE id = $1 RETURNING owner_id", [.text(id)])
            return (!deleted.isEmpty, try deleted.map { .projects(ownerID: try $0.text("owner_id")) })
        }
    }

    public func countProjectsByState() async throws -> [EnvironmentState: Int] {
        var counts: [EnvironmentState: Int] = [:]
        for row in try await database.query("SELECT state, COUNT(*) AS n FROM projects GROUP BY state") {
            if let state = EnvironmentState(rawValue: try row.text("state")) {
                counts[state] = Int(try row.int("n"))
            }
        }
        return counts
    }

    static func project(from row: SQLRow) throws -> Project {
        guard let owner = UserName(rawValue: try row.text("owner_name")),
              let name = ProjectName(rawValue: try row.text("name")),
              let state = EnvironmentState(rawValue: try row.text("state"))
        else { throw SQLDriverError.unexpectedColumn("owner_name/name/state", "a valid project") }
        var project = Project(
            id: try row.text("id"), ownerID: try row.text("owner_id"), owner: owner, name: name,
            template: try row.text("template"), description: try row.text("description"), state: state,
            stateReason: try row.text("state_reason"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
        project.lastActivity = try row.optionalDate("last_activity")
        project.autoStart = try row.bool("auto_start")
        return project
    }

    public func transition(
        projectID: String, from: Set<EnvironmentState>, to: EnvironmentState, reason: String,
        desired: EnvironmentState?, record: RuntimeRecordChange, at date: Date
    ) async throws -> Project? {
        try await write { sql in
            // Placeholders for the allowed states; the values are enum raw values, never user text.
            let allowed = from.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
            var assignments = ["state = $1", "state_reason = $2", "updated_at = $3"]
            var binds: [SQLValue] = [.text(to.rawValue), .text(reason), .date(date)]
            if let desired {
                binds.append(.text(desired.rawValue))
                assignments.append("desired_state = $\(binds.count)")
            }
            switch record {
            case .keep: break
            case .clear: assignments.append("runtime_record = NULL")
            case .set(let json):
                binds.append(.text(json))
                assignments.append("runtime_record = $\(binds.count)")
            }
            binds.append(.text(projectID))
            let updated = try await sql.query(
                "UPDATE projects SET \(assignments.joined(separator: ", ")) WHERE id = $\(binds.count) AND state IN (\(allowed)) RETURNING owner_id",
                binds)
            guard let row = updated.first else { return (nil, []) }
            let moved = try await sql.query("\(Self.projectSelect) WHERE p.id = $1", [.text(projectID)]).first.map(Self.project(from:))
            return (moved, [.projects(ownerID: try row.text("owner_id"))])
        }
    }

    public func recordActivity(_ times: [String: Date]) async throws {
        guard !times.isEmpty else { return }
        try await write { sql in
            var owners: Set<String> = []
            for (id, time) in times.sorted(by: { $0.key < $1.key }) {
                let rows = try await sql.query(
                    """
                    UPDATE projects SET last_activity = $1
                    WHERE id = $2 AND (last_activity IS NULL OR last_activity < $1) RETURNING owner_id
                    """, [.date(time), .text(id)])
                for row in rows { owners.insert(try row.text("owner_id")) }
            }
            return ((), owners.sorted().map { .activity(ownerID: $0) })
        }
    }

    public func runtimeRecord(projectID: String) async throws -> String? {
        try await database.query("SELECT runtime_record FROM projects WHERE id = $1", [.text(projectID)]).first?
            .optionalText("runtime_record")
    }

    public func projectsToReconcile() async throws -> [(project: Project, desired: EnvironmentState, record: String?)] {
        try await database.query(
            """
            \(Self.projectSelect)
            WHERE p.desired_state = 'active' OR p.state NOT IN ('inactive', 'failed') OR p.runtime_record IS NOT NULL
            ORDER BY p.updated_at
            """
        ).map { row in
            let desired = EnvironmentState(rawValue: try row.text("desired_state")) ?? .inactive
            return (try Self.project(from: row), desired, try row.optionalText("runtime_record"))
        }
    }
}
