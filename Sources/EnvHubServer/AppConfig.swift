import EnvHubRuntime
import Foundation
import Logging

/// Everything `buildApplication` needs, read by the executable from flags and `ENVHUB_*`
/// variables. Defaults are the single-machine setup: SQLite in `./envhub-data`.
public struct AppConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var dataDirectory = "./envhub-data"
    /// `postgres://…` to use PostgreSQL; nil or empty for SQLite in the data directory.
    public var databaseURL: String?
    public var logLevel = Logger.Level.info
    /// Anyone may create an account with `POST /api/auth/register`.
    public var openSignup = false
    /// Mark the session cookie Secure even when the request did not arrive over HTTPS.
    public var secureCookies = false
    /// Admins pass the gateway into other users' apps. Unless `appOrigins` is set, apps share
    /// the hub's origin, so an app's page can act with its visitor's session: such a hub whose
    /// users' apps admins should not trust turns this off (as JupyterHub's `admin_access` and
    /// Coder's path-app rules do). Admins still see, start and stop every environment.
    public var adminAppAccess = true
    /// Serve each user's apps on an origin of their own (`--public-url` with `--apps-url`) rather
    /// than the hub's: then an app's page cannot act with its visitor's hub session at all.
    public var appOrigins: AppOrigins?
    /// More templates, read after the built-in ones.
    public var templatesDirectory: String?
    /// The first admin's password; generated and announced when nil.
    public var adminPassword: String?
    /// How long a sign-in lasts.
    public var sessionLifetime: Duration = .seconds(7 * 24 * 3600)
    /// bcrypt work factor; lower only in tests.
    public var bcryptCost: UInt8 = 12
    /// How long a checked session token is remembered before the store is asked again.
    /// Revocations reach every replica's memory at once through the change feed; this is
    /// only a safety net.
    public var sessionCacheLifetime: Duration = .seconds(60)
    /// The envhub binary that templates' `{{envhub}}` commands run: this process's own by default.
    public var envhubBinary: String = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]
    /// At most this many environments start at once; the rest wait their turn.
    public var maxConcurrentStarts = 20
    /// At most this many environments of one user are starting or active.
    public var maxActivePerUser = 5
    /// Where environments run; nil: local processes under the data directory (`LocalRuntime`).
    public var runtime: (any EnvironmentRuntime)?
    /// How long a component may take to exit after SIGTERM before it is killed.
    public var stopGrace: Duration = .seconds(10)
    /// Active environments unused for this long are stopped; nil or zero never stops them.
    public var idleTimeout: Duration? = .seconds(3600)
    /// How often running environments are checked for crashed components.
    public var healthCheckInterval: Duration = .seconds(2)
    /// How often the runtime is asked for what runs for deleted projects (and removes it).
    public var orphanSweepInterval: Duration = .seconds(60)
    /// The gateway abandons an exchange with an app that neither sends a byte nor takes one
    /// of the request for this long (nginx's proxy read and send timeouts in one).
    public var gatewayIdleTimeout: Duration = .seconds(3600)
    /// A connection to an app waits this long in the gateway's pool for the next request to
    /// that app, then closes (nginx's upstream `keepalive_timeout`; never longer than
    /// `gatewayIdleTimeout`): an app that keeps a thread or a process per connection is not
    /// left holding them for the gateway's idle timeout after a burst of requests.
    public var gatewayKeepAliveTimeout: Duration = .seconds(60)
    /// A client connection that keeps the hub waiting this long (sending nothing between
    /// requests, stalling in the middle of one, or taking longer over a request's head from
    /// its first bytes) is closed; nil never closes one. nginx's
    /// keep-alive default; a connection waiting for its answer, or carrying a WebSocket or an
    /// event stream, is never idle in this sense.
    public var clientIdleTimeout: Duration? = .seconds(75)
    /// Proxies in front of the hub whose X-Forwarded-For goes on to apps (`TrustedProxies`).
    public var trustedProxies = TrustedProxies.none
    /// The longest a busy hub waits between rounds of writing its chat sockets (see `ChatFlusher`).
    public var chatFlushInterval: Duration = ChatHub.defaultFlushInterval
    /// Stop every environment when the hub shuts down gracefully. Off by default: a restarted
    /// hub re-adopts what still runs, so an upgrade does not interrupt anyone.
    public var stopEnvironmentsOnExit = false
    /// Where the first admin's generated password is announced (the console by default).
    public var announce: @Sendable (String) -> Void = { message in
        // Written at once, not buffered: the console may be a pipe or a log file.
        FileHandle.standardOutput.write(Data((message + "\n").utf8))
    }

    public init() {}
}
