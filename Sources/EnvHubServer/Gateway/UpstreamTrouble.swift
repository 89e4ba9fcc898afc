import EnvHubCore
import NIOHTTP1

/// What the gateway does when the app's connection fails or falls silent during an exchange:
/// the same rules on both paths (`GatewayByteProxy`, `GatewayProxyHandler`).
enum UpstreamTrouble {
    /// One more try, on a new connection: a pooled one turned out closed and nothing but the
    /// head of an idempotent request had gone (the app may close idle connections at any
    /// moment). Others are not sent twice, as nginx and Go's proxy do not: the app may have
    /// acted on them before it closed.
    case retry
    /// Part of the answer is out: the client cannot be told otherwise than by closing.
    case closeClient
    /// Nothing of the answer is out: answer in place of the app.
    case answer(FixedAnswer)

    /// The app could not be reached or dropped the connection, or its answer could not be
    /// read or passed on (NIO's parser failed on it, or `AnswerCodingCheck` refused it: `malformed`).
    static func failed(
        label: String, error: (any Error)?, reusedConnection: Bool, idempotent: Bool, sentBody: Bool, responseStarted: Bool
    ) -> UpstreamTrouble {
        if error is HTTPParserError || error is UnpassableTransferCoding { return malformed(label: label, responseStarted: responseStarted) }
        if reusedConnection, idempotent, !sentBody, !responseStarted { return .retry }
        if responseStarted { return .closeClient }
        let reason = error.map { ": \($0)" } ?? ": it closed the connection"
        return .answer(FixedAnswer(EnvHubError(code: "bad_gateway", status: 502, message: "\(label) did not answer\(reason)")))
    }

    /// The app answered with something that is not HTTP/1.1. It did get the request, so the
    /// request is not tried again.
    static func malformed(label: String, responseStarted: Bool) -> UpstreamTrouble {
        if responseStarted { return .closeClient }
        return .answer(FixedAnswer(EnvHubError(code: "bad_gateway", status: 502, message: "\(label) sent a malformed response")))
    }

    /// The app neither sent nor took anything for the idle timeout.
    static func silent(label: String, idleTimeout: Duration, responseStarted: Bool) -> UpstreamTrouble {
        if responseStarted { return .closeClient }
        return .answer(FixedAnswer(EnvHubError(code: "gateway_timeout", status: 504, message: "\(label) sent nothing for \(idleTimeout)")))
    }
}
