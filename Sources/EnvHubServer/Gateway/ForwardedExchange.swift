import EnvHubCore
import HTTPTypes
import NIOCore

/// One request the gateway forwards to an app, and the response coming back: what both
/// gateway handlers (`GatewayByteProxy`, `GatewayProxyHandler`) track of it, each in a
/// subclass with what its own path needs. The environment counts as in use from the moment
/// the exchange is made until it is let go (`ActivityTracker.Shard.opened`), bytes passing or
/// not; the shard is the one of the event loop serving the client's connection.
class ForwardedExchange<Request, Response> {
    let target: ProxyTarget
    /// The request is HEAD: the app's connection is not reused after it (`releaseUpstream`).
    let headRequest: Bool
    /// The request's method is idempotent (RFC 9110 §9.2.2): it may be sent again when a
    /// pooled connection turns out closed (`UpstreamTrouble.failed`).
    let idempotent: Bool
    private let activity: ActivityTracker.Shard
    var upstream: UpstreamConnection<Request, Response>?
    /// The connection came from the pool (a failure before any answer may be retried).
    var reusedConnection = false
    var sentBody = false
    var requestSent = false
    var responseStarted = false
    /// Something was written to the app since the last flush.
    var unflushed = false

    init(target: ProxyTarget, method: HTTPRequest.Method, activity: ActivityTracker.Shard) {
        self.target = target
        headRequest = method == .head
        idempotent = switch method {
        case .get, .head, .options, .trace, .put, .delete: true
        default: false
        }
        self.activity = activity
        activity.opened(target.projectID)
    }

    deinit { activity.closed(target.projectID) }

    /// Lets go of the app's connection for good: what is on it cannot be trusted any more.
    func dropUpstream() {
        upstream?.owner = nil
        upstream?.close()
    }

    /// The response is complete: the app's connection goes back to `pool` if the request is
    /// whole too (else the app would read the rest of it as a new request) and was not HEAD.
    /// An app that wrongly sends a body with its answer to HEAD may send it a moment after the
    /// head, when the next request on the connection would read it as the start of its answer.
    func releaseUpstream(to pool: UpstreamPool<Request, Response>?) {
        guard let upstream else { return }
        upstream.owner = nil
        if requestSent, !headRequest, let pool { pool.put(upstream) } else { upstream.close() }
    }
}

/// The steps of forwarding both gateway handlers take alike: deciding about a request,
/// getting a connection to the app, and what follows when the app fails or falls silent
/// (`UpstreamTrouble`). On the client connection's event loop only.
protocol ExchangeForwarder: UpstreamOwner {
    associatedtype Request
    associatedtype Exchange: ForwardedExchange<Request, Response>

    var gateway: Gateway { get }
    /// The client connection's event loop; nil once the handler has left the pipeline.
    var eventLoop: (any EventLoop)? { get }
    var pool: UpstreamPool<Request, Response>? { get }
    /// The exchange in progress, if any.
    var exchange: Exchange? { get set }

    /// Sends what the app is to get first over a connection just obtained for `exchange`.
    func attach(_ connection: UpstreamConnection<Request, Response>, to exchange: Exchange)
    /// Goes on with what the client sent, as far as the state now allows.
    func process()
    /// Answers in place of the app; `exchange`, let go already, had this answer's request.
    func answerInstead(_ answer: FixedAnswer, of exchange: Exchange)
    /// Ends the client's connection, once what has been written of the app's answer is
    /// flushed: the client sees the answer cut short rather than nothing.
    func closeClient()
}

extension ExchangeForwarder {
    /// Calls `act` with the gateway's answer to `request` once the store has answered (the
    /// caches could not decide: `Gateway.cachedAnswer`), on the event loop and only while the
    /// handler is in the pipeline, followed by `process()`. Callers ask the caches first, so
    /// that the closure is made only for this, rarer, case.
    func decideFromStore(_ request: Gateway.Request, remoteAddress: SocketAddress?, act: @escaping (GatewayAnswer) -> Void) {
        guard let eventLoop else { return }
        let gateway = gateway
        let promise = eventLoop.makePromise(of: GatewayAnswer.self)
        promise.completeWithTask { await gateway.answer(request, remoteAddress: remoteAddress) }
        promise.futureResult.assumeIsolated().whenSuccess { answer in
            guard self.eventLoop != nil else { return }
            act(answer)
            self.process()
        }
    }

    /// Sends the exchange over a pooled connection to its app at once, or over a new one once
    /// connected (`reuse` false: always a new one). The pooled case makes no closures: it is
    /// nearly every request's.
    func connect(_ exchange: Exchange, reuse: Bool = true) {
        guard let eventLoop, let pool else { return }
        if reuse, let connection = pool.idleConnection(to: exchange.target.upstream) {
            exchange.reusedConnection = true
            attach(connection, to: exchange)
            return process()
        }
        exchange.reusedConnection = false
        pool.newConnection(
            to: exchange.target.upstream, on: eventLoop, idleTimeout: gateway.idleTimeout, keepAliveTimeout: gateway.keepAliveTimeout,
            wanted: { self.exchange === exchange }
        ) { result in
            switch result {
            case .success(let connection):
                self.attach(connection, to: exchange)
                self.process()
            case .failure(let error):
                self.upstreamFailed(exchange, error: error)
            }
        }
    }

    /// The app could not be reached or dropped the connection.
    func upstreamFailed(_ exchange: Exchange, error: (any Error)?) {
        guard self.exchange === exchange else { return }
        handle(UpstreamTrouble.failed(
            label: exchange.target.label, error: error, reusedConnection: exchange.reusedConnection,
            idempotent: exchange.idempotent, sentBody: exchange.sentBody, responseStarted: exchange.responseStarted))
    }

    func handle(_ trouble: UpstreamTrouble) {
        guard let exchange else { return }
        switch trouble {
        case .retry:
            exchange.upstream = nil
            connect(exchange, reuse: false)
        case .closeClient:
            abandonExchange()
            closeClient()
        case .answer(let answer):
            abandonExchange()
            answerInstead(answer, of: exchange)
        }
    }

    /// The client went away or broke the protocol, or the app did: the app's connection
    /// cannot be reused.
    func abandonExchange() {
        guard let exchange else { return }
        self.exchange = nil
        exchange.dropUpstream()
    }

    func upstreamTimedOut(_ connection: AnyObject) {
        guard let exchange, exchange.upstream === connection else { return }
        handle(UpstreamTrouble.silent(
            label: exchange.target.label, idleTimeout: gateway.idleTimeout, responseStarted: exchange.responseStarted))
    }
}
