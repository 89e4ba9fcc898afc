/// The one error type of envhub's domain. Each case carries what a client needs to act on it;
/// the server turns it into `{"error": {"code", "message"}}` with `status`.
public struct EnvHubError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code such as `not_found` or `invalid_field`.
    public let code: String
    /// The HTTP status this error answers with.
    public let status: Int
    /// A sentence for people.
    public let message: String
    /// Seconds after which a throttled request may be retried.
    public var retryAfterSeconds: Int?

    public init(code: String, status: Int, message: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code): \(message)" }

    public static func badRequest(_ message: String) -> Self {
        .init(code: "bad_request", status: 400, message: message)
    }
    /// A field of a request body is missing, of the wrong type or out of range.
    public static func invalidField(_ field: String, _ message: String) -> Self {
        .init(code: "invalid_field", status: 400, message: message)
    }
    public static func unauthenticated(_ message: String = "sign in first") -> Self {
        .init(code: "unauthenticated", status: 401, message: message)
    }
    public static func forbidden(_ message: String) -> Self {
        .init(code: "forbidden", status: 403, message: message)
    }
    public static func notFound(_ message: String) -> Self {
        .init(code: "not_found", status: 404, message: message)
    }
    public static func conflict(_ message: String) -> Self {
        .init(code: "conflict", status: 409, message: message)
    }
    public static func tooManyRequests(_ message: String, retryAfterSeconds: Int) -> Self {
        .init(code: "too_many_requests", status: 429, message: message, retryAfterSeconds: retryAfterSeconds)
    }
    public static func unavailable(_ message: String) -> Self {
        .init(code: "unavailable", status: 503, message: message)
    }
}
