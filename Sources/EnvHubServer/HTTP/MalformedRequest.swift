import EnvHubCore
import NIOHTTP1

/// The answers to requests that break HTTP/1.1's message syntax (RFC 9112) rather than the
/// hub's rules: what NIO's parser could not read, and what RFC 9112 asks a server to refuse
/// that the parser lets through. Every one is a JSON error like any other the hub gives, and
/// the connection closes after it (`HTTP1Semantics`): where one message was misread, the
/// next cannot be trusted to start where the client meant it to.
enum MalformedRequest {
    /// What NIO's parser failed on, told to the client.
    static func error(for parserError: HTTPParserError) -> EnvHubError {
        switch parserError {
        case .headerOverflow:
            return EnvHubError(code: "header_too_large", status: 431, message: "the request's header fields are too large")
        case .invalidMethod, .invalidURL, .invalidVersion, .invalidConstant, .invalidHost, .invalidPort, .invalidPath,
             .invalidQueryString, .invalidFragment:
            return .badRequest("the request line is malformed")
        case .lfExpected, .invalidHeaderToken, .invalidCharactersUsed, .strictModeAssertion:
            return .badRequest("a header line is malformed (each line must end in CRLF, with no white space before the colon)")
        case .invalidContentLength:
            return .badRequest("Content-Length must be one decimal number")
        case .unexpectedContentLength:
            return .badRequest("the body's framing is ambiguous: Content-Length twice, or with Transfer-Encoding")
        case .invalidChunkSize:
            return .badRequest("the chunked body is malformed")
        default:
            return .badRequest("the request is not valid HTTP/1.1")
        }
    }

    /// RFC 9112's rules for a request head that NIO's parser leaves to the server: exactly one
    /// Host field (§3.2: in HTTP/1.1, and never more than one), and a body whose length can
    /// be known (§6.1, §6.3: chunked last among the transfer codings, and none in HTTP/1.0).
    /// nil: the head keeps them.
    static func error(in head: HTTPRequestHead) -> EnvHubError? {
        let hosts = head.headers["host"].count
        if hosts > 1 || (hosts == 0 && head.version != .http1_0) {
            return .badRequest("a request needs exactly one Host field")
        }
        let codings = head.headers[canonicalForm: "transfer-encoding"]
        guard !codings.isEmpty else { return nil }
        if head.version == .http1_0 { return .badRequest("an HTTP/1.0 request cannot have Transfer-Encoding") }
        guard codings.last?.lowercased() == "chunked" else {
            return .badRequest("the body's length cannot be known: Transfer-Encoding must end in chunked")
        }
        if codings.count > 1 {
            return EnvHubError(code: "not_implemented", status: 501, message: "no transfer coding but chunked is supported")
        }
        return nil
    }
}
