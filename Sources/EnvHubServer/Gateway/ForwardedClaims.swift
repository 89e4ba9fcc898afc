import HTTPTypes

/// What a request's own X-Forwarded-For, -Proto and -Host fields say about the client behind
/// it. Only a trusted proxy (`TrustedProxies`) is believed: anyone can write anything into
/// them, and apps act on them (absolute URLs, redirects to https, Secure cookies). The two
/// readers ask whether the request came from one first: `ForwardedHeaders.forwardedFields`,
/// for what apps are told, and `SessionCookie`, for its Secure flag.
struct ForwardedClaims: Sendable {
    /// The X-Forwarded-For values, each a comma-separated list, in the order of their fields.
    var forwardedFor: [String] = []
    /// The X-Forwarded-Proto values.
    var proto: [String] = []
    /// The X-Forwarded-Host values.
    var host: [String] = []

    init() {}

    init(_ fields: HTTPFields) {
        forwardedFor = fields[values: .xForwardedFor]
        proto = fields[values: .xForwardedProto]
        host = fields[values: .xForwardedHost]
    }

    /// The client used https. The last value decides: the one the nearest proxy set, should it
    /// add to a list its own client began (as configurable-http-proxy does).
    var https: Bool { Self.last(of: proto).map { $0.lowercased() == "https" } ?? false }

    /// The host the client asked for, if a proxy said so (the last value, as for `https`).
    var originalHost: String? { Self.last(of: host).map(String.init) }

    /// The last element of comma-separated lists spread over several fields (`fromTheEnd`).
    static func last(of values: [String]) -> Substring? {
        var last: Substring?
        fromTheEnd(of: values) { element in
            last = element
            return false
        }
        return last
    }

    /// Hands `visit` the elements of comma-separated lists spread over several fields, blanks
    /// trimmed and empty ones skipped, from the last on, for as long as it returns true.
    static func fromTheEnd(of values: [String], _ visit: (Substring) -> Bool) {
        for value in values.reversed() {
            for var element in value.split(separator: ",").reversed() {
                while let first = element.first, isBlank(first) { element.removeFirst() }
                while let last = element.last, isBlank(last) { element.removeLast() }
                if !element.isEmpty, !visit(element) { return }
            }
        }
    }

    private static func isBlank(_ character: Character) -> Bool { character == " " || character == "\t" }
}
