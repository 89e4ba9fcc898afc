import EnvHubCore
import EnvHubStore
import Foundation
import Hummingbird
import EnvHubRuntime
import Logging
import NIOCore
import ServiceLifecycle

/// A built hub: the application to run, and the parts tests look at.
public struct Hub: Sendable {
    public let application: Application<RouterResponder<HubRequestContext>>
    public let routes: RouteCatalog
    public let store: SQLStore
    public let templates: TemplateCatalog
    let lifecycle: EnvironmentLifecycle

    /// Stops every environment (once queued starts and stops are done), leaving no process behind.
    public func stopAllEnvironments() async throws { try await lifecycle.stopAll() }

    /// Returns once the hub has re-adopted or repaired every environment after starting.
    public func waitUntilReconciled() async throws { try await lifecycle.reconciled.wait() }
}

/// Builds the application that `envhub serve` runs and tests drive. The store's connections
/// run as a service; migrations, the signing key and the first admin are set up before the
/// server accepts connections.
public func buildApplication(_ config: AppConfig, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    try await buildHub(config, logger: logger).application
}

public func buildHub(_ config: AppConfig, logger: Logger? = nil) async throws -> Hub {
    let logger = {
        var logger = logger ?? Logger(label: "envhub")
        logger.logLevel = config.logLevel
        return logger
    }()
    // Everything that can fail comes before the store opens, so a failed start leaves nothing open.
    let templates = try TemplateLoader.load(directory: config.templatesDirectory)
    let openAPIDocument = try OpenAPIDocument.load()
    let webAssets = try WebAssets.load()
    let hasher = PasswordHasher(cost: config.bcryptCost)
    let decoyHash = try await hasher.makeDecoyHash()
    let store = try await SQLStore.open(databaseURL: config.databaseURL, dataDirectory: config.dataDirectory, logger: logger)
    let sessions = SessionAuthority(
        store: store, feed: store.changes, lifetime: config.sessionLifetime, cacheLifetime: config.sessionCacheLifetime)
    let metrics = HubMetrics()
    let catalog = RouteCatalog()

    let router = Router(context: HubRequestContext.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: ErrorMiddleware(catalog: catalog))
    let appSignIn = AppSignIn(origins: config.appOrigins, sessions: sessions, adminAppAccess: config.adminAppAccess)
    router.add(middleware: AppOriginMiddleware(signIn: appSignIn))
    router.add(middleware: CrossOriginMiddleware())
    router.add(middleware: AuthenticationMiddleware(sessions: sessions))
    let routes = HubRoutes(router: router, catalog: catalog)

    AuthController(
        store: store, sessions: sessions, hasher: hasher,
        throttle: LoginThrottle(store: store, trustedProxies: config.trustedProxies),
        cookie: SessionCookie(secureByConfiguration: config.secureCookies, trustedProxies: config.trustedProxies),
        openSignup: config.openSignup, decoyHash: decoyHash
    ).addRoutes(to: routes)
    appSignIn.addRoutes(to: routes)
    let runtime = config.runtime ?? LocalRuntime(
        root: URL(fileURLWithPath: config.dataDirectory).appendingPathComponent("environments"),
        envhubBinary: config.envhubBinary, stopGrace: config.stopGrace, logger: logger)
    let lifecycle = EnvironmentLifecycle(
        store: store, runtime: runtime, templates: templates, maxConcurrentStarts: config.maxConcurrentStarts,
        maxActivePerUser: config.maxActivePerUser, checkInterval: config.healthCheckInterval,
        orphanSweepInterval: config.orphanSweepInterval,
        idleTimeout: config.idleTimeout.flatMap { $0 > .zero ? TimeInterval($0.components.seconds) : nil },
        stopAllOnExit: config.stopEnvironmentsOnExit, logger: logger)
    UserController(store: store, hasher: hasher, lifecycle: lifecycle).addRoutes(to: routes)
    ProjectController(
        store: store, templates: templates, listCache: ProjectListCache(feed: store.changes), lifecycle: lifecycle
    ).addRoutes(to: routes)
    EnvironmentController(access: ProjectAccess(store: store, activity: lifecycle.activity), lifecycle: lifecycle)
        .addRoutes(to: routes)
    TemplateController(templates: templates).addRoutes(to: routes)
    let gateway = Gateway(
        store: store, templates: templates, sessions: sessions, activity: lifecycle.activity,
        idleTimeout: config.gatewayIdleTimeout, keepAliveTimeout: config.gatewayKeepAliveTimeout,
        trustedProxies: config.trustedProxies, adminAppAccess: config.adminAppAccess, origins: config.appOrigins,
        metrics: metrics)
    gateway.addRoutes(to: router)
    WebController(assets: webAssets).addRoutes(to: router)
    let agentReplies = AgentReplies(store: store, logger: logger)
    AgentConversationController(
        access: ProjectAccess(store: store, activity: lifecycle.activity), store: store, routes: gateway.routes, replies: agentReplies
    ).addRoutes(to: routes)
    RoomController(store: store).addRoutes(to: routes)
    let chat = ChatHub(store: store, logger: logger, flushInterval: config.chatFlushInterval)
    OperationsController(
        store: store, metrics: metrics, openAPIDocument: openAPIDocument,
        runtimeKind: runtime.kind, runtimeDescription: runtime.summary, agentReplies: agentReplies, chat: chat,
        activity: lifecycle.activity, openSignup: config.openSignup, adminAppAccess: config.adminAppAccess,
        appOrigins: config.appOrigins
    ).addRoutes(to: routes)

    var application = Application(
        router: router,
        server: .http1WithGateway(
            gateway, chat: ChatUpgrade(hub: chat, sessions: sessions, store: store),
            configuration: .init(idleTimeout: config.clientIdleTimeout.map { TimeAmount($0) })),
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "envhub"),
        services: storeServices(store, logger: logger) + [
            SessionSweeper(store: store, interval: .seconds(3600), logger: logger), MemoryTrimmer(logger: logger),
            lifecycle, chat,
        ],
        logger: logger)
    // After the store, which must outlive the replies that finish during a graceful shutdown.
    application.addServices(agentReplies)
    application.beforeServerStarts {
        // A stop asked for meanwhile (SIGTERM while the database cannot be reached) ends the wait.
        try await cancelWhenGracefulShutdown {
            try await store.migrate()
            try await sessions.loadSigningKeys()
            try await FirstAdmin.ensure(store: store, hasher: hasher, password: config.adminPassword, announce: config.announce)
        }
        lifecycle.storeReady.open()
        logger.info("envhub is ready", metadata: ["store": "\(store.kind.rawValue)", "address": "\(config.host):\(config.port)"])
    }
    return Hub(application: application, routes: catalog, store: store, templates: templates, lifecycle: lifecycle)
}

/// The store's connections: the pool and, on PostgreSQL, the change feed's listener. They stop
/// last (services stop in the reverse order of their start), and are not waited for forever.
private func storeServices(_ store: SQLStore, logger: Logger) -> [any Service] {
    var services: [any Service] = [BoundedShutdown(service: store.database, name: "the database connection pool", logger: logger)]
    if let listener = store.changeListener(logger: logger) {
        services.append(BoundedShutdown(service: listener, name: "the change feed's listener", logger: logger))
    }
    return services
}

/// The OpenAPI 3.1 document shipped with the binary.
enum OpenAPIDocument {
    static func load() throws -> ByteBuffer {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw EnvHubError.unavailable("openapi.json is missing from this build")
        }
        return ByteBuffer(bytes: try Data(contentsOf: url))
    }
}
