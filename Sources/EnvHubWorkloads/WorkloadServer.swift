import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The built-in workloads, by the name `envhub workload NAME` takes.
public enum Workload: String, CaseIterable, Sendable {
    case hello
    case athlete
    case agent
    case data
    case postgres
    case desktop

    /// Runs the workload until SIGTERM or SIGINT.
    public func run(_ environment: WorkloadEnvironment, logger: Logger) async throws {
        switch self {
        case .postgres: try await PostgresWorkload(environment: environment, logger: logger).run()
        case .desktop: try await DesktopWorkload(environment: environment, logger: logger).run()
        case .hello, .athlete, .agent, .data: try await application(environment, logger: logger).runService()
        }
    }

    /// The HTTP server of the workloads that are one (all but `postgres` and `desktop`, which
    /// supervise other programs and throw here).
    public func application(_ environment: WorkloadEnvironment, logger: Logger) throws -> some ApplicationProtocol {
        let router = Router()
        var services: [any Service] = []
        switch self {
        case .hello: HelloWorkload(environment: environment).addRoutes(to: router)
        case .athlete: AthleteWorkload(environment: environment).addRoutes(to: router)
        case .agent: AgentWorkload(environment: environment).addRoutes(to: router)
        case .data:
            let data = try DataWorkload(environment: environment, logger: logger)
            data.addRoutes(to: router)
            services.append(data.client)
        case .postgres, .desktop: throw WorkloadError("\(rawValue) is not an HTTP server")
        }
        if self != .data {
            router.get("/health") { _, _ in WorkloadJSON.response(["status": "healthy"]) }
        }
        return Application(
            responder: BasePathResponder(basePath: environment.basePath, next: router.buildResponder()),
            configuration: .init(address: .hostname(environment.host, port: environment.port), serverName: "envhub-\(rawValue)"),
            services: services,
            logger: logger)
    }
}

/// Lets a workload answer both `/x` and `{BASE_PATH}/x`, whether or not the gateway strips
/// the prefix. It rewrites the path before the router sees it.
struct BasePathResponder<Next: HTTPResponder>: HTTPResponder where Next.Context == BasicRequestContext {
    let basePath: String
    let next: Next

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let path = request.uri.path
        guard !basePath.isEmpty, path == basePath || path.hasPrefix(basePath + "/") else {
            return try await next.respond(to: request, context: context)
        }
        var stripped = String(path.dropFirst(basePath.count))
        if stripped.isEmpty { stripped = "/" }
        var head = request.head
        head.path = stripped + (request.uri.query.map { "?" + $0 } ?? "")
        return try await next.respond(to: Request(head: head, body: request.body), context: context)
    }
}

/// JSON bodies of the workloads, written with sorted keys like the Flask apps they replace.
enum WorkloadJSON {
    static func response(_ object: [String: String], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
