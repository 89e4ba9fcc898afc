import EnvHubCore
import EnvHubStore
import Hummingbird
import Logging
import NIOHTTP1

/// Turns every failure into the JSON error body with the right status, so no client ever
/// sees an empty 500; a path that exists under other methods answers 405 with `Allow`.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let catalog: RouteCatalog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as EnvHubError {
            return error.response()
        } catch let error as HTTPError {
            if error.status == .notFound {
                let allowed = catalog.allowedMethods(forPath: request.uri.path)
                if !allowed.isEmpty {
                    var headers = HTTPFields()
                    headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
                    return EnvHubError(code: "method_not_allowed", status: 405,
                                       message: "\(request.method.rawValue) is not allowed here; use \(headers[.allow] ?? "")")
                        .response(extraHeaders: headers)
                }
                return EnvHubError.notFound("no route for \(request.method.rawValue) \(request.uri.path)").response()
            }
            return Self.translate(error).response(extraHeaders: error.headers)
        } catch let error as HTTPParserError {  // the body broke HTTP/1.1's syntax (a bad chunk size)
            return MalformedRequest.error(for: error).response()
        } catch SQLDriverError.unavailable(let reason) {
            context.logger.error("request failed", metadata: ["error": "\(reason)", "http.path": "\(request.uri.path)"])
            return EnvHubError.unavailable("the hub cannot reach its database; try again shortly").response()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "http.path": "\(request.uri.path)"])
            return EnvHubError(code: "internal", status: 500, message: "the hub failed to handle this request; see its log").response()
        }
    }

    private static func translate(_ error: HTTPError) -> EnvHubError {
        let code = switch error.status.code {
        case 400: "bad_request"
        case 401: "unauthenticated"
        case 403: "forbidden"
        case 413: "body_too_large"
        case 415: "unsupported_media_type"
        default: "http_\(error.status.code)"
        }
        let message = error.body ?? (error.status.code == 413 ? "the request body is larger than 1 MiB" : error.status.reasonPhrase)
        return EnvHubError(code: code, status: error.status.code, message: message)
    }
}
