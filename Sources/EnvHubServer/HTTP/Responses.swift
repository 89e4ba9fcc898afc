import EnvHubCore
import Foundation
import Hummingbird

extension Response {
    /// A JSON response encoded with the API's one encoder configuration.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        json(encoded: try JSONWriter.encode(value), status: status, headers: headers)
    }

    /// A JSON response from a body that is already encoded.
    static func json(encoded body: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    static func noContent(headers: HTTPFields = [:]) -> Response {
        Response(status: .noContent, headers: headers)
    }
}

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        let code: String
        let message: String
    }
    let error: Detail
}

extension EnvHubError {
    func response(extraHeaders: HTTPFields = [:]) -> Response {
        var answer = FixedAnswer(self)
        answer.headers.append(contentsOf: extraHeaders)
        return answer.response
    }
}
