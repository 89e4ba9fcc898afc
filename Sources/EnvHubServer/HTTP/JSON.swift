import EnvHubCore
import Foundation
import Hummingbird
import NIOCore

/// Reading request bodies: ISO 8601 dates, errors that name the field. Responses are written
/// by `JSONWriter`.
public enum JSON {
    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Reads the body (at most the context's limit: 413 beyond it) and decodes it, turning
    /// decoding failures into 400s that name the field.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: HubRequestContext) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw EnvHubError.bodyTooLarge
        }
        if buffer.readableBytes == 0 { throw EnvHubError.badRequest("the request needs a JSON body") }
        if containsNUL(buffer.readableBytesView) { throw EnvHubError.badRequest(nulMessage) }
        do {
            return try decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw describe(error)
        } catch let error as EnvHubError {
            throw error
        }
    }

    static let nulMessage = "no text may contain the character U+0000 (NUL)"

    /// Whether a JSON text has a string with the character U+0000 (`\u0000`; a raw NUL byte is
    /// not valid JSON and fails decoding anyway). No field may hold one: PostgreSQL refuses it
    /// in text and SQLite cuts the text there, so accepting it would store something else.
    /// An escape is a backslash after an even run of backslashes (`\\u0000` is a backslash
    /// and "u0000").
    static func containsNUL(_ bytes: some Collection<UInt8>) -> Bool {
        let nul = Array("u0000".utf8)
        var backslashes = 0
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                backslashes += 1
            } else {
                if backslashes % 2 == 1, byte == UInt8(ascii: "u"), bytes[index...].starts(with: nul) { return true }
                backslashes = 0
            }
            index = bytes.index(after: index)
        }
        return false
    }

    static func describe(_ error: DecodingError) -> EnvHubError {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (last.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath, key)
            return .invalidField(field, "\(field) is required")
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            if field.isEmpty { return .badRequest("the body must be a JSON object") }
            return .invalidField(field, "\(field) must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return .invalidField(field, "\(field) must be \(typeName(type)), not null")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field.isEmpty { return .badRequest("the body is not valid JSON") }
            return .invalidField(field, "\(field) \(context.debugDescription)")
        @unknown default:
            return .badRequest("the body could not be read")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        default: type == [String: Any].self ? "an object" : "of type \(type)"
        }
    }
}

extension EnvHubError {
    /// A body over `HubRequestContext.bodyLimit`.
    static let bodyTooLarge = EnvHubError(code: "body_too_large", status: 413, message: "the request body is larger than 1 MiB")
}
