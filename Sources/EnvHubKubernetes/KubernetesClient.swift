import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// A small Kubernetes REST client: get, list, server-side apply, delete, the scale
/// subresource, and watches (`KubernetesWatch`). Requests that fail with 429, a 5xx or a
/// connection problem are retried with exponential back-off (honouring `Retry-After`); every
/// call here is idempotent, so retrying is safe.
public final class KubernetesClient: Sendable {
    public let connection: KubernetesConnection
    let http: HTTPClient
    let retry: RetryPolicy
    private let token: TokenSource

    public struct RetryPolicy: Sendable {
        public var attempts = 5
        public var firstDelay = Duration.milliseconds(200)
        public var maxDelay = Duration.seconds(5)
        /// For one request (watches excepted, which last until the server ends them).
        public var timeout = Duration.seconds(30)
        public init() {}
    }

    public init(connection: KubernetesConnection, retry: RetryPolicy = .init()) throws {
        self.connection = connection
        self.retry = retry
        var configuration = HTTPClient.Configuration(tlsConfiguration: try Self.tlsConfiguration(connection), redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(10)
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        token = TokenSource(connection.credentials)
    }

    /// How to trust the server and prove who we are; fails on PEM that does not load.
    public static func tlsConfiguration(_ connection: KubernetesConnection) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let authority = connection.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(authority))
            }
            if case .clientCertificate(let certificate, let key) = connection.credentials {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw KubernetesConfigError(connection.source, "has a certificate or key that is not valid PEM: \(error)")
        }
        if connection.insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }

    public func shutdown() async throws { try await http.shutdown() }

    // MARK: verbs

    /// The object at `path`, or nil when there is none.
    public func get(_ path: String) async throws -> JSONValue? {
        do {
            return try await send(.GET, path)
        } catch KubernetesError.status(404, _, _) {
            return nil
        }
    }

    /// The objects of a collection and the list's resourceVersion (to watch from).
    public func list(_ path: String, labelSelector: String? = nil) async throws -> (items: [JSONValue], resourceVersion: String) {
        let list = try await send(.GET, path, query: labelSelector.map { [("labelSelector", $0)] } ?? [])
        return (list["items"]?.array ?? [], list.value(at: "metadata.resourceVersion")?.string ?? "")
    }

    /// Server-side apply with field manager `envhub`, taking over fields other managers set
    /// (envhub owns these objects). Creates the object when it is missing.
    @discardableResult
    public func apply(_ object: JSONValue) async throws -> JSONValue {
        try await send(.PATCH, try ResourcePath.object(object), query: [("fieldManager", "envhub"), ("force", "true")],
                       body: object.json, contentType: "application/apply-patch+yaml")
    }

    /// Deletes the object (its dependants in the background); false when there was none.
    @discardableResult
    public func delete(_ path: String) async throws -> Bool {
        do {
            _ = try await send(.DELETE, path, body: #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
                               contentType: "application/json")
            return true
        } catch KubernetesError.status(404, _, _) {
            return false
        }
    }

    /// Sets the replicas of a Deployment or StatefulSet through its scale subresource.
    public func scale(_ path: String, replicas: Int) async throws {
        _ = try await send(.PATCH, path + "/scale", body: #"{"spec":{"replicas":\#(replicas)}}"#, contentType: "application/merge-patch+json")
    }

    // MARK: requests

    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: String? = nil, contentType: String? = nil
    ) async throws -> JSONValue {
        let bytes = try await exchange(method, path, query: query, body: body, contentType: contentType)
        return (try? JSONValue.parse(bytes.readableBytesView)) ?? [:]
    }

    /// One request, retried as the type's comment says; the body of the 2xx answer.
    func exchange(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: String? = nil, contentType: String? = nil
    ) async throws -> ByteBuffer {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await http.execute(try request(method, path, query: query, body: body, contentType: contentType),
                                                      timeout: .nanoseconds(Int64(retry.timeout.components.seconds) * 1_000_000_000))
                let bytes = try await response.body.collect(upTo: 64 << 20)
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return bytes }
                let error = KubernetesError.from(status: status, body: bytes)
                guard Self.isRetryable(status), attempt < retry.attempts else { throw error }
                try await Task.sleep(for: delay(attempt, retryAfter: response.headers.first(name: "Retry-After")))
            } catch let error as KubernetesError {
                throw error
            } catch let error as KubernetesConfigError {
                throw error
            } catch {
                // Connection refused or reset, timeouts: the API server may be restarting.
                guard attempt < retry.attempts, !(error is CancellationError) else {
                    throw KubernetesError.unreachable("\(method) \(path): \(error)")
                }
                try await Task.sleep(for: delay(attempt, retryAfter: nil))
            }
        }
    }

    func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: String?, contentType: String?
    ) throws -> HTTPClientRequest {
        var components = URLComponents(url: connection.server, resolvingAgainstBaseURL: false)
        components?.percentEncodedPath = connection.server.path.trimmingSuffix("/") + path
        if !query.isEmpty { components?.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components?.url?.absoluteString else { throw KubernetesError.unreachable("bad path \(path)") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let bearer = try token.current() { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    static func isRetryable(_ status: Int) -> Bool { status == 429 || (500...504).contains(status) }

    func delay(_ attempt: Int, retryAfter: String?) -> Duration {
        if let retryAfter, let seconds = Int(retryAfter) { return min(.seconds(seconds), retry.maxDelay) }
        return min(retry.firstDelay * (1 << min(attempt - 1, 10)), retry.maxDelay)
    }
}

/// The bearer token, read again from its file whenever the file changes (projected service
/// account tokens rotate).
final class TokenSource: Sendable {
    private let credentials: KubernetesConnection.Credentials
    private let cached = NIOLockedValueBox<(token: String, modified: Date)?>(nil)

    init(_ credentials: KubernetesConnection.Credentials) { self.credentials = credentials }

    func current() throws -> String? {
        switch credentials {
        case .token(let token): return token
        case .tokenFile(let path):
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            if let cached = cached.withLockedValue({ $0 }), cached.modified == modified { return cached.token }
            guard let token = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw KubernetesConfigError(path, "cannot be read (the service account token)")
            }
            let trimmed = token.trimmingCharacters(in: .whitespacesAndNewlines)
            cached.withLockedValue { $0 = (trimmed, modified) }
            return trimmed
        case .none, .clientCertificate: return nil
        }
    }
}

/// An answer other than 2xx, or no answer.
public enum KubernetesError: Error, Equatable, CustomStringConvertible {
    /// The status, the Status object's `reason` and `message`.
    case status(Int, reason: String, message: String)
    case unreachable(String)

    static func from(status: Int, body: ByteBuffer) -> KubernetesError {
        let object = try? JSONValue.parse(body.readableBytesView)
        return .status(status, reason: object?["reason"]?.string ?? "", message: object?["message"]?.string ?? String(buffer: body))
    }

    public var description: String {
        switch self {
        case .status(let code, let reason, let message): "Kubernetes API answered \(code) \(reason): \(message)"
        case .unreachable(let detail): "Kubernetes API unreachable: \(detail)"
        }
    }
}

/// Where an object or a collection lives in the API.
public enum ResourcePath {
    struct Kind {
        let prefix: String
        let plural: String
        let namespaced: Bool
    }

    static let kinds: [String: Kind] = [
        "Namespace": Kind(prefix: "/api/v1", plural: "namespaces", namespaced: false),
        "Secret": Kind(prefix: "/api/v1", plural: "secrets", namespaced: true),
        "Service": Kind(prefix: "/api/v1", plural: "services", namespaced: true),
        "ResourceQuota": Kind(prefix: "/api/v1", plural: "resourcequotas", namespaced: true),
        "LimitRange": Kind(prefix: "/api/v1", plural: "limitranges", namespaced: true),
        "PersistentVolumeClaim": Kind(prefix: "/api/v1", plural: "persistentvolumeclaims", namespaced: true),
        "Pod": Kind(prefix: "/api/v1", plural: "pods", namespaced: true),
        "Event": Kind(prefix: "/api/v1", plural: "events", namespaced: true),
        "Deployment": Kind(prefix: "/apis/apps/v1", plural: "deployments", namespaced: true),
        "StatefulSet": Kind(prefix: "/apis/apps/v1", plural: "statefulsets", namespaced: true),
        "NetworkPolicy": Kind(prefix: "/apis/networking.k8s.io/v1", plural: "networkpolicies", namespaced: true),
        "HorizontalPodAutoscaler": Kind(prefix: "/apis/autoscaling/v2", plural: "horizontalpodautoscalers", namespaced: true),
    ]

    /// `/apis/apps/v1/namespaces/envhub-alice/deployments`
    public static func collection(_ kind: String, namespace: String?) throws -> String {
        guard let known = kinds[kind] else { throw KubernetesError.unreachable("envhub does not know the kind \(kind)") }
        guard known.namespaced, let namespace else { return "\(known.prefix)/\(known.plural)" }
        return "\(known.prefix)/namespaces/\(namespace)/\(known.plural)"
    }

    /// The path of `object`, from its kind, namespace and name.
    public static func object(_ object: JSONValue) throws -> String {
        guard let kind = object["kind"]?.string, let name = object.value(at: "metadata.name")?.string else {
            throw KubernetesError.unreachable("an object without kind or name")
        }
        return try collection(kind, namespace: object.value(at: "metadata.namespace")?.string) + "/" + name
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
