import ArgumentParser
import EnvHubServer
import Foundation
import Hummingbird

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the hub: its HTTP API and the environments. Stops gracefully on SIGTERM or SIGINT (environments keep running unless --stop-environments-on-exit); migrates the store first.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Address to listen on. Env: ENVHUB_HOST. Default: 127.0.0.1")
    var host: String?

    @Option(help: "Port to listen on. Env: ENVHUB_PORT. Default: 8080")
    var port: Int?

    @Flag(name: .customLong("open-signup"), help: "Let anyone create an account. Env: ENVHUB_OPEN_SIGNUP=true")
    var openSignup = false

    @Flag(name: .customLong("secure-cookies"), help: "Mark the session cookie Secure (serve behind HTTPS; a trusted proxy that says https makes it Secure too). A Secure one is named __Host-envhub_session, which no other host of the site can shadow. Env: ENVHUB_SECURE_COOKIES=true")
    var secureCookies = false

    @Flag(name: .customLong("no-admin-app-access"), help: "Admins may not open other users' apps through the gateway (they still see, start and stop every environment): apps share the hub's origin (unless --apps-url), so an app's page can act with the session of whoever views it. Env: ENVHUB_ADMIN_APP_ACCESS=false")
    var noAdminAppAccess = false

    @Option(name: .customLong("apps-url"), help: "Serve each user's apps on an origin of their own, apart from the hub's: alice's at {scheme}://alice.{host}[:port]/u/alice/…, so that no app's page can act with its visitor's hub session (needs a wildcard DNS name and, for https, certificate; put them on another registrable domain than the hub's). Browsers sign in to them through the hub. Needs --public-url. Env: ENVHUB_APPS_URL. Default: apps share the hub's origin")
    var appsURL: String?

    @Option(name: .customLong("public-url"), help: "The hub's own address as browsers reach it (https://hub.example.com), for --apps-url. Env: ENVHUB_PUBLIC_URL")
    var publicURL: String?

    @Option(name: .customLong("idle-timeout"), help: "Stop environments unused this long: seconds, or with s, m or h; 0 never. Env: ENVHUB_IDLE_TIMEOUT. Default: 1h")
    var idleTimeout: String?

    @Option(name: .customLong("max-concurrent-starts"), help: "Environments starting at once; more wait. Env: ENVHUB_MAX_CONCURRENT_STARTS. Default: 20")
    var maxConcurrentStarts: Int?

    @Option(name: .customLong("max-active-per-user"), help: "Starting or active environments per user. Env: ENVHUB_MAX_ACTIVE_PER_USER. Default: 5")
    var maxActivePerUser: Int?

    @Option(name: .customLong("gateway-idle-timeout"), help: "The gateway gives up on an app that neither sends nor takes a byte for this long (a kept-alive connection to an app waits at most 60 s, or this when shorter): seconds, or with s, m or h. Env: ENVHUB_GATEWAY_IDLE_TIMEOUT. Default: 1h")
    var gatewayIdleTimeout: String?

    @Option(name: .customLong("client-idle-timeout"), help: "Close a client connection that keeps the hub waiting this long, sending nothing between requests, stalling in one, or taking longer over a request's head (not one waiting for its answer or for the app to take its upload, nor a WebSocket or event stream): seconds, or with s, m or h; 0 never. Env: ENVHUB_CLIENT_IDLE_TIMEOUT. Default: 75s")
    var clientIdleTimeout: String?

    @Option(name: .customLong("trusted-proxies"), help: "Proxies in front of the hub (a load balancer, an ingress), as comma-separated addresses or CIDR ranges: a request from one keeps the X-Forwarded-For list it came with, the proxy's address added, and its X-Forwarded-Proto and -Host, for the apps to see (and the session cookie is Secure when it says https); from anyone else apps get the client's address alone, http and the Host field. Env: ENVHUB_TRUSTED_PROXIES. Default: none")
    var trustedProxies: String?

    @Option(name: .customLong("chat-flush-interval"), help: "Chat sockets are written in rounds, each once per round with every frame that waits; a quiet hub at once, a busy one at most this many milliseconds apart (five times what the last round took). 0: after every turn of the event loop. Env: ENVHUB_CHAT_FLUSH_INTERVAL. Default: 30")
    var chatFlushInterval: Int?

    @Flag(name: .customLong("stop-environments-on-exit"), help: "On SIGTERM or SIGINT, stop every environment before exiting instead of leaving them for the next start to re-adopt. Env: ENVHUB_STOP_ENVIRONMENTS_ON_EXIT=true")
    var stopEnvironmentsOnExit = false

    /// "90", "90s", "15m", "1h" → seconds.
    static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600]
        if let unit = text.last.flatMap({ units[$0] }), let value = Int(text.dropLast()), value >= 0 { return value * unit }
        if let value = Int(text), value >= 0 { return value }
        return nil
    }

    /// A timeout that 0 turns off (nil); `what` names it in the error.
    private static func timeout(_ raw: String, _ what: String) throws -> Duration? {
        guard let seconds = seconds(raw) else {
            throw ValidationError("\(what) '\(raw)' must be a number of seconds, or end in s, m or h (0 disables)")
        }
        return seconds > 0 ? .seconds(seconds) : nil
    }

    private func positiveNumber(_ flag: Int?, _ variable: String) throws -> Int? {
        guard let raw = flag.map(String.init) ?? ProcessInfo.processInfo.environment[variable] else { return nil }
        guard let value = Int(raw), value > 0 else { throw ValidationError("\(variable) must be a positive number, not '\(raw)'") }
        return value
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        var config = try store.config()
        config.host = host ?? env["ENVHUB_HOST"] ?? config.host
        if let rawPort = port.map(String.init) ?? env["ENVHUB_PORT"] {
            guard let value = Int(rawPort), (0...65535).contains(value) else {
                throw ValidationError("port '\(rawPort)' must be a number between 0 and 65535")
            }
            config.port = value
        }
        config.openSignup = try openSignup || environmentFlag("ENVHUB_OPEN_SIGNUP") == true
        config.secureCookies = try secureCookies || environmentFlag("ENVHUB_SECURE_COOKIES") == true
        config.stopEnvironmentsOnExit = try stopEnvironmentsOnExit || environmentFlag("ENVHUB_STOP_ENVIRONMENTS_ON_EXIT") == true
        config.adminAppAccess = try !(noAdminAppAccess || environmentFlag("ENVHUB_ADMIN_APP_ACCESS") == false)
        switch (appsURL ?? env["ENVHUB_APPS_URL"], publicURL ?? env["ENVHUB_PUBLIC_URL"]) {
        case (nil, nil): break
        case (let apps?, let hub?):
            do { config.appOrigins = try AppOrigins(publicURL: hub, appsURL: apps) } catch { throw ValidationError("\(error)") }
        case (nil, _?): throw ValidationError("--public-url is used only with --apps-url")
        case (_?, nil): throw ValidationError("--apps-url needs --public-url, the hub's own address, for app origins to send browsers to")
        }
        if let password = env["ENVHUB_ADMIN_PASSWORD"], !password.isEmpty { config.adminPassword = password }
        if let raw = idleTimeout ?? env["ENVHUB_IDLE_TIMEOUT"] { config.idleTimeout = try Self.timeout(raw, "idle timeout") }
        if let raw = gatewayIdleTimeout ?? env["ENVHUB_GATEWAY_IDLE_TIMEOUT"] {
            guard let seconds = Self.seconds(raw), seconds > 0 else {
                throw ValidationError("gateway idle timeout '\(raw)' must be a positive number of seconds, or end in s, m or h")
            }
            config.gatewayIdleTimeout = .seconds(seconds)
        }
        if let raw = clientIdleTimeout ?? env["ENVHUB_CLIENT_IDLE_TIMEOUT"] {
            config.clientIdleTimeout = try Self.timeout(raw, "client idle timeout")
        }
        if let raw = trustedProxies ?? env["ENVHUB_TRUSTED_PROXIES"] {
            do { config.trustedProxies = try TrustedProxies(raw) } catch { throw ValidationError("trusted proxies: \(error)") }
        }
        if let raw = chatFlushInterval.map(String.init) ?? env["ENVHUB_CHAT_FLUSH_INTERVAL"] {
            guard let milliseconds = Int(raw), (0...1000).contains(milliseconds) else {
                throw ValidationError("chat flush interval '\(raw)' must be a number of milliseconds from 0 to 1000")
            }
            config.chatFlushInterval = .milliseconds(milliseconds)
        }
        config.maxConcurrentStarts = try positiveNumber(maxConcurrentStarts, "ENVHUB_MAX_CONCURRENT_STARTS") ?? config.maxConcurrentStarts
        config.maxActivePerUser = try positiveNumber(maxActivePerUser, "ENVHUB_MAX_ACTIVE_PER_USER") ?? config.maxActivePerUser
        let logger = store.logger(config)
        let kubernetes = try await runtime.make(logger: logger)
        config.runtime = kubernetes
        do {
            let app = try await buildApplication(config, logger: logger)
            try await app.runService()
        } catch is CancellationError {
            // SIGTERM or SIGINT while still starting (waiting for the database): a stop, as asked.
            logger.notice("envhub stopped before it was ready")
        } catch {
            try? await kubernetes?.client.shutdown()
            throw error
        }
        try? await kubernetes?.client.shutdown()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and exit. `serve` also applies them at start.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let config = try store.config()
        let applied = try await withStore(config) { try await $0.migrate() }
        print(applied.isEmpty ? "envhub: the schema is up to date" : "envhub: applied migrations \(applied.map(String.init).joined(separator: ", "))")
    }
}
