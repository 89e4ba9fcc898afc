import EnvHubServer
import EnvHubTestSupport
import Foundation
import Testing

/// Messages that break HTTP/1.1's syntax (RFC 9112), from clients and from apps: each is
/// answered at once with a JSON error and the right status, on every path a request takes
/// (the gateway's byte path, a request lent to NIO's parser, a connection the parser keeps,
/// the hub's own routes), never with silence or a wait for an idle timeout.
@Suite struct MalformedRequestTests {
    /// A malformed request, and what the hub must answer to it.
    struct Shape: Sendable {
        let name: String
        let status: Int
        let code: String
        /// The request for `path`; `fields` are Host and the token, as a client sends them.
        let text: @Sendable (_ path: String, _ fields: String) -> String
    }

    static let shapes: [Shape] = [
        Shape(name: "lines ended by a bare LF", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\n" + fields.replacingOccurrences(of: "\r\n", with: "\n") + "Content-Length: 0\n\n"
        },
        Shape(name: "no Host", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\r\n" + fields.split(separator: "\r\n").dropFirst().map { $0 + "\r\n" }.joined()
                + "Content-Length: 0\r\n\r\n"
        },
        Shape(name: "two Hosts", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\r\nHost: other.example\r\n\(fields)Content-Length: 0\r\n\r\n"
        },
        Shape(name: "a field folded over two lines", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\r\n\(fields)X-Folded: one\r\n two\r\nContent-Length: 0\r\n\r\n"
        },
        Shape(name: "Transfer-Encoding without chunked last", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\r\n\(fields)Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n"
        },
        Shape(name: "a transfer coding besides chunked", status: 501, code: "not_implemented") { path, fields in
            "POST \(path) HTTP/1.1\r\n\(fields)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        },
        Shape(name: "Transfer-Encoding in HTTP/1.0", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.0\r\n\(fields)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        },
        Shape(name: "a chunk size that is not hexadecimal", status: 400, code: "bad_request") { path, fields in
            "POST \(path) HTTP/1.1\r\n\(fields)Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
        },
        Shape(name: "header fields of 100 KiB", status: 431, code: "header_too_large") { path, fields in
            "POST \(path) HTTP/1.1\r\n\(fields)X-Large: \(String(repeating: "a", count: 100 * 1024))\r\nContent-Length: 0\r\n\r\n"
        },
    ]

    /// Every shape, for an app and for the hub's API, at a connection's start, after a request
    /// lent to NIO's parser, and on a connection the parser keeps: the last answer on the
    /// connection is the shape's JSON error, and the hub then closes the connection.
    @Test func malformedRequestsGetAJSONErrorAndTheConnectionEnds() async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            for shape in Self.shapes {
                for opening in GatewayConnectionTests.Opening.allCases {
                    for path in ["/u/admin/web/echo", "/api/auth/login"] {
                        let label = "\(shape.name), \(opening), \(path)"
                        let socket = try RawSocket(port: port)
                        socket.send(opening.text + shape.text(path, fields))
                        let text = try await socket.receive { _ in false }  // until the hub closes
                        #expect(socket.closedByPeer, "\(label): the connection stayed open after \(text)")
                        guard let last = text.range(of: "HTTP/1.1 ", options: .backwards) else {
                            Issue.record("\(label): no answer")
                            continue
                        }
                        let answer = text[last.lowerBound...]
                        #expect(answer.hasPrefix("HTTP/1.1 \(shape.status) "), "\(label): \(answer)")
                        #expect(answer.contains("\r\n\r\n{\"error\":{\"code\":\"\(shape.code)\""), "\(label): \(answer)")
                    }
                }
            }
        }
    }

    /// An app whose answer is not HTTP/1.1 (its lines end in a bare LF, and it keeps the
    /// connection), or is in a transfer coding no client asked for (gzip, not chunked: the
    /// client could not undo it; or `chunked,` and `chunked<TAB>`, which NIO's parser and
    /// clients built on llhttp read as another coding), gets the client a 502 at once, on both
    /// gateway paths, as nginx does; and the request is not sent to the app a second time, even
    /// over a pooled connection, since the app did get it.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood], ["/bare-lf", "/unknown-coding", "/chunked-comma", "/chunked-tab"])
    func anAppsMalformedAnswerIsA502AndNeverARetry(after opening: GatewayConnectionTests.Opening, path: String) async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let fields = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let socket = try RawSocket(port: port)
            // A first request leaves a connection to the app in the pool.
            socket.send(opening.text + "GET /u/admin/web/health HTTP/1.1\r\n\(fields)\r\n")
            let first = try await socket.receive { GatewayConnectionTests.bodies($0).count == (opening == .none ? 1 : 2) }
            #expect(first.contains("healthy"), "\(first)")
            socket.send("POST /u/admin/web\(path) HTTP/1.1\r\n\(fields)Content-Length: 0\r\n\r\n")
            let text = try await socket.receive { $0.contains("sent a malformed response") }
            #expect(text.contains("HTTP/1.1 502 "), "\(text)")
            #expect(text.contains("\"message\":\"admin/web sent a malformed response\""), "\(text)")
            let seen = try await rawHTTPExchange(
                port: port, "GET /u/admin/web/seen?target=\(path) HTTP/1.1\r\n\(fields)Connection: close\r\n\r\n")
            #expect(seen.hasSuffix("{\"count\": 1}"), "the app got the request more than once: \(seen)")
        }
    }

    /// An answer whose chunked body is malformed: on the byte path, which has the head and
    /// the body in one read, nothing has gone to the client yet, so it gets a 502 (and keeps
    /// its connection); on NIO's parser, which hands on the head before it reads the body, the
    /// client gets the head and then the end of the connection: the answer cut short, never
    /// nothing at all.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood])
    func anAnswerWithAMalformedBodyIsA502OrCutShort(after opening: GatewayConnectionTests.Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send(opening.text + "GET /u/admin/web/bad-chunk HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let text = try await socket.receive { $0.contains("malformed response\"}}") }  // or until the hub closes
            let answer = text.components(separatedBy: "HTTP/1.1 ").last ?? ""
            if opening == .none {
                #expect(answer.hasPrefix("502 ") && answer.contains("admin/web sent a malformed response"), "\(text)")
            } else {
                #expect(socket.closedByPeer, "\(text)")
                #expect(answer.hasPrefix("200 ") && answer.lowercased().contains("transfer-encoding: chunked"), "\(text)")
                #expect(!answer.contains("hi"), "\(text)")
            }
        }
    }

    /// An app may not set the hub's session cookie: under its prefix it would shadow the
    /// hub's. Its other cookies pass, on both paths.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood])
    func anAppCannotSetTheHubsSessionCookie(after opening: GatewayConnectionTests.Opening) async throws {
        try await GatewayTests.withActiveProject("probe") { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send(opening.text + "GET /u/admin/web/cookie HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let text = try await socket.receive { GatewayConnectionTests.bodies($0).count == (opening == .none ? 1 : 2) }
            #expect(text.lowercased().contains("set-cookie: a=1; path=/u/admin/web/\r\n"), "\(text)")
            #expect(!text.contains("envhub_session"), "\(text)")
        }
    }
}
