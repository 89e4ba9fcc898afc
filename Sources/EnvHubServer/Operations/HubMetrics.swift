import EnvHubCore
import EnvHubStore
import Hummingbird
import NIOConcurrencyHelpers
import Prometheus

/// The hub's Prometheus registry: request durations by route, method and status, gauges of
/// users and projects by state, refreshed from the store on each scrape, and gauges of what
/// the replica is doing at that moment (`Now`).
final class HubMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private static let buckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    private struct RequestLabels: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    /// The histograms already made: the registry checks names and labels on every call, which
    /// costs more than the request being timed when the gateway forwards a small one.
    private let requestHistograms = NIOLockedValueBox<[RequestLabels: DurationHistogram]>([:])

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        requestHistogram(route: route, method: method, status: status).record(duration)
    }

    /// The histogram `recordRequest` records in, for callers that keep it (`GatewayTiming`).
    func requestHistogram(route: String, method: String, status: Int) -> DurationHistogram {
        let labels = RequestLabels(route: route, method: method, status: status)
        if let histogram = requestHistograms.withLockedValue({ $0[labels] }) { return histogram }
        let histogram = registry.makeDurationHistogram(
            descriptor: .init(namespace: "envhub", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                              helpText: "Time to answer HTTP requests, by route pattern, method and status."),
            labels: [("route", route), ("method", method), ("status", String(status))],
            buckets: Self.buckets)
        requestHistograms.withLockedValue { $0[labels] = histogram }
        return histogram
    }

    /// Requests the gateway's byte path gave NIO's HTTP parser (the hub's pages and API, gateway
    /// requests it does not read itself), by whether the connection came back to the byte path
    /// after the answer or stayed with the parser for good.
    private let parserHandovers: (returned: Counter, kept: Counter)

    init() {
        let descriptor = MetricNameDescriptor(
            namespace: "envhub", subsystem: "gateway", metricName: "parser_handovers", unitName: "total",
            helpText: "Requests the gateway's byte path gave NIO's HTTP parser, by whether the connection came back after the answer.")
        parserHandovers = (
            registry.makeCounter(descriptor: descriptor, labels: [("connection", "returned")]),
            registry.makeCounter(descriptor: descriptor, labels: [("connection", "kept")]))
    }

    func recordParserHandover(connectionReturned: Bool) {
        (connectionReturned ? parserHandovers.returned : parserHandovers.kept).increment()
    }

    /// What the replica serving the scrape is doing, read at that moment.
    struct Now {
        /// Gateway requests in progress and WebSocket tunnels open (`ActivityTracker`).
        var gatewayExchanges: Int
        /// Agent replies being relayed (`AgentReplies`).
        var agentReplies: Int
        /// Users with a chat socket open, on any replica (`ChatHub`).
        var chatUsersOnline: Int
    }

    /// The exposition text, after reading the current counts from the store.
    func render(store: any UserStore & ProjectStore, now: Now) async throws -> String {
        for (name, help, value) in [
            ("gateway_open_exchanges", "Gateway requests in progress and WebSocket tunnels open, on this replica.",
             now.gatewayExchanges),
            ("agent_replies_active", "Agent replies being relayed, on this replica.", now.agentReplies),
            ("chat_users_online", "Users with a chat socket open, on any replica.", now.chatUsersOnline),
        ] {
            registry.makeGauge(descriptor: .init(namespace: "envhub", metricName: name, unitName: "", helpText: help))
                .set(Double(value))
        }
        registry.makeGauge(descriptor: .init(namespace: "envhub", metricName: "users", unitName: "",
                                             helpText: "User accounts."))
            .set(Double(try await store.countUsers()))
        let counts = try await store.countProjectsByState()
        for state in EnvironmentState.allCases {
            registry.makeGauge(descriptor: .init(namespace: "envhub", metricName: "projects", unitName: "",
                                                 helpText: "Projects by environment state."),
                               labels: [("state", state.rawValue)])
                .set(Double(counts[state] ?? 0))
        }
        return registry.emitToString()
    }
}

/// Times every request, errors included (it sits outside the error middleware).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let metrics: HubMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        // Unmatched paths share one label so that scanners cannot grow the label set.
        let route = context.endpointPath ?? "unmatched"
        metrics.recordRequest(route: route == "NotFound" ? "unmatched" : route, method: request.method.rawValue,
                              status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }
}

/// How a gateway connection times its requests in `envhub_http_request_duration_seconds`:
/// in the histogram of the request's method and status, keeping the last one, which the
/// next request on the connection most often shares (that skips the metrics' table and its
/// lock, shared by every connection). Both gateway handlers keep one.
struct GatewayTiming {
    private var last: (method: HTTPRequest.Method, status: Int, histogram: DurationHistogram)?

    mutating func record(_ duration: Duration, method: HTTPRequest.Method, status: Int, in metrics: HubMetrics?) {
        guard let metrics else { return }
        if last?.method != method || last?.status != status {
            last = (method, status, metrics.requestHistogram(route: Gateway.metricsRoute, method: method.rawValue, status: status))
        }
        last?.histogram.record(duration)
    }
}
