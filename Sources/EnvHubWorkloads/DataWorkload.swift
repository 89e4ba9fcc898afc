import EnvHubStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// The JSON document API of the `data` template, on the PostgreSQL at `DATABASE_URL`:
/// - `GET /data` lists stored documents, oldest first, each with its `"_id"` (a string, as
///   MongoDB's were); `?limit=` (1–1000, default 100) and `?after=ID` page through them;
/// - `POST /data` stores a JSON object and answers 201 with it and its `_id`; anything
///   else (an array, a string, broken JSON) gets 400, a body over 1 MiB 413;
/// - `/health` is 2xx only while the database answers, so the environment is not active
///   before its database is.
struct DataWorkload {
    static let maximumBody = 1 << 20
    let environment: WorkloadEnvironment
    let client: PostgresClient
    let logger: Logger
    private let schema = SchemaOnce()

    init(environment: WorkloadEnvironment, logger: Logger) throws {
        guard let url = environment.variables["DATABASE_URL"] else {
            throw WorkloadError("DATABASE_URL must name the PostgreSQL database, as postgres://user:password@host:port/database")
        }
        self.environment = environment
        self.client = PostgresClient(
            configuration: try PostgresAddress(url: url, variable: "DATABASE_URL").clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in
            do {
                try await ensureSchema()
                return WorkloadJSON.response(["status": "healthy"])
            } catch {
                return WorkloadJSON.response(["status": "unhealthy", "reason": "database: \(String(reflecting: error))"],
                                             status: .serviceUnavailable)
            }
        }
        router.get("/data") { request, _ in
            let limit = request.uri.queryParameters["limit"].map { Int(String($0)) } ?? 100
            let after = request.uri.queryParameters["after"].map { Int(String($0)) } ?? 0
            guard let limit, (1...1000).contains(limit), let after, after >= 0 else {
                return WorkloadJSON.response(["error": "limit must be 1–1000 and after a document id"], status: .badRequest)
            }
            try await ensureSchema()
            let rows = try await client.query("""
                SELECT coalesce(jsonb_agg(body || jsonb_build_object('_id', id::text) ORDER BY id), '[]')::text
                FROM (SELECT id, body FROM documents WHERE id > \(after) ORDER BY id LIMIT \(limit)) page
                """, logger: logger)
            var text = "[]"
            for try await (list) in rows.decode(String.self) { text = list }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/data") { request, _ in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maximumBody)
            } catch {
                return WorkloadJSON.response(["error": "a document may be at most 1 MiB"], status: .contentTooLarge)
            }
            guard (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) is [String: Any] else {
                return WorkloadJSON.response(["error": "send one JSON object, such as {\"name\": \"Ada\"}"], status: .badRequest)
            }
            try await ensureSchema()
            let text = String(buffer: body)
            do {
                let rows = try await client.query("""
                    INSERT INTO documents (body) VALUES (\(text)::jsonb)
                    RETURNING (body || jsonb_build_object('_id', id::text))::text
                    """, logger: logger)
                var stored = "{}"
                for try await (document) in rows.decode(String.self) { stored = document }
                return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: stored)))
            } catch let error as PSQLError where error.serverInfo?[.sqlState]?.hasPrefix("22") == true {
                // Data exceptions: JSON PostgreSQL cannot store, such as a \u0000 in a string.
                return WorkloadJSON.response(["error": error.serverInfo?[.message] ?? "the database refused this document"], status: .badRequest)
            }
        }
    }

    private func ensureSchema() async throws {
        try await schema.run {
            try await client.query("""
                CREATE TABLE IF NOT EXISTS documents (
                    id bigserial PRIMARY KEY,
                    body jsonb NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
        }
    }
}

/// Runs an idempotent setup until it has succeeded once.
actor SchemaOnce {
    private var done = false

    func run(_ body: @Sendable () async throws -> Void) async throws {
        guard !done else { return }
        try await body()
        done = true
    }
}
