import EnvHubKubernetes
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A stand-in for the Kubernetes API server, over real HTTP and JSON: objects by path with
/// resourceVersions, label-selected lists, server-side apply (create or replace), the scale
/// subresource, deletes (a namespace takes its objects with it), and watch streams from a
/// resourceVersion, as JSON lines written in pieces. Tests can inject answers (409, 410, 429,
/// 5xx, slow ones), end watches, and forget old versions (so watches from them get 410).
public final class FakeKubernetesAPI: Sendable {
    public struct Fault: Sendable {
        let method: String
        let pathContains: String
        let status: Int
        var delay: Duration = .zero

        public init(method: String, pathContains: String, status: Int, delay: Duration = .zero) {
            self.method = method
            self.pathContains = pathContains
            self.status = status
            self.delay = delay
        }
    }

    public init() {}

    private struct State {
        var objects: [String: JSONValue] = [:]
        var version = 100
        /// (version, type, object path, object), oldest first.
        var history: [(Int, String, String, JSONValue)] = []
        /// Versions below this are forgotten: watching from them answers 410.
        var oldestKept = 0
        var faults: [Fault] = []
        var requests: [String] = []
        var authorizations: [String] = []
        var watchGeneration = 0
        /// Set when the test is over: every stream ends, including ones that begin later
        /// (a client's last request can reach the server after the test ended the others).
        var closed = false
        var expiryGeneration = 0
        /// Watch streams that have begun to follow changes.
        var watchesStarted = 0
        /// Log streams (`follow=true`) that have begun: lines written later reach them.
        var logFollowersStarted = 0
        /// What each pod's container wrote, by pod path.
        var logs: [String: [String]] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let changed = NIOLockedValueBox<[UUID: AsyncStream<Void>.Continuation]>([:])

    // MARK: what tests look at and do

    public var objectPaths: [String] { state.withLockedValue { $0.objects.keys.sorted() } }
    public func object(_ path: String) -> JSONValue? { state.withLockedValue { $0.objects[path] } }
    /// Watch streams that have begun to follow changes (each one sees a later
    /// `expireWatches` or `endWatches`).
    public var watchesStarted: Int { state.withLockedValue { $0.watchesStarted } }
    /// Pod log streams that have begun to follow (each one gets the lines written later).
    public var logFollowersStarted: Int { state.withLockedValue { $0.logFollowersStarted } }
    public var requests: [String] { state.withLockedValue { $0.requests } }
    /// The Authorization header of each request ("" when none).
    public var authorizations: [String] { state.withLockedValue { $0.authorizations } }

    public func inject(_ fault: Fault) { state.withLockedValue { $0.faults.append(fault) } }

    /// Forgets history (as etcd compaction does): open watches get an ERROR event with 410,
    /// and watches from older versions get 410 Gone.
    public func expireWatches() {
        state.withLockedValue { state in
            state.oldestKept = state.version
            state.history.removeAll()
            state.expiryGeneration += 1
        }
        notify()
    }

    /// Ends every open watch (as the API server does after `timeoutSeconds`).
    public func endWatches() {
        state.withLockedValue { $0.watchGeneration += 1 }
        notify()
    }

    /// Writes an object as another client would (e.g. a controller updating status). A
    /// Deployment or StatefulSet gets its pods at once, as a cluster would soon: ready, or
    /// stuck in ImagePullBackOff when the image's name contains "broken".
    public func put(_ path: String, _ object: JSONValue) {
        state.withLockedValue { state in
            Self.store(path, object, into: &state)
            if ["Deployment", "StatefulSet"].contains(object["kind"]?.string ?? "") { Self.runPods(of: path, &state) }
        }
        notify()
    }

    public func remove(_ path: String) {
        state.withLockedValue { state in Self.delete(path, from: &state) }
        notify()
    }

    // MARK: the server

    private func close() {
        state.withLockedValue { $0.closed = true }
        notify()
    }

    /// A line written by the pod's container, for `pods/{name}/log`.
    public func writeLog(_ podPath: String, _ line: String) {
        state.withLockedValue { $0.logs[podPath, default: []].append(line) }
        notify()
    }

    public func run(_ body: @escaping @Sendable (_ port: Int) async throws -> Void) async throws {
        let router = Router()
        router.on("**", method: .get) { request, context in try await self.handle(request, context: context) }
        router.on("**", method: .patch) { request, context in try await self.handle(request, context: context) }
        router.on("**", method: .delete) { request, context in try await self.handle(request, context: context) }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              logger: Logger(label: "fake-kubernetes", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await app.testStoppingGracefully(.live) { client in
            // Open streams end with the test, or the server would wait for them forever.
            defer { close() }
            guard let port = client.port else { throw TestSetupError("the fake Kubernetes API has no port") }
            try await body(port)
        }
    }

    private func handle(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let path = request.uri.path
        let query = request.uri.queryParameters
        let method = request.method.rawValue
        let fault = state.withLockedValue { state -> Fault? in
            state.requests.append("\(method) \(path)")
            state.authorizations.append(request.headers[.authorization] ?? "")
            guard let index = state.faults.firstIndex(where: { $0.method == method && path.contains($0.pathContains) }) else { return nil }
            return state.faults.remove(at: index)
        }
        if let fault {
            await pause(fault.delay)
            if fault.status != 200 {
                return Self.status(fault.status, reason: fault.status == 409 ? "Conflict" : "Injected", message: "injected \(fault.status)",
                                   headers: fault.status == 429 ? [.retryAfter: "0"] : [:])
            }
        }
        let body = try await request.body.collect(upTo: 16 << 20)
        switch request.method {
        case .get where path == "/version":
            return Self.json(["major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"])
        case .get where path.hasSuffix("/log"):
            return log(String(path.dropLast("/log".count)), tail: query.get("tailLines").flatMap { Int($0) }, follow: query.get("follow") == "true")
        case .get where query.get("watch") == "true":
            return watch(path, from: Int(query.get("resourceVersion") ?? "") ?? 0, selector: query.get("labelSelector"))
        case .get:
            if Self.isCollection(path) {
                let (items, version) = state.withLockedValue { state in
                    (state.objects.filter { Self.inCollection($0.key, path) && Self.matches($0.value, query.get("labelSelector")) }
                        .sorted { $0.key < $1.key }.map(\.value), state.version)
                }
                return Self.json(["kind": "List", "metadata": ["resourceVersion": .string(String(version))], "items": .array(items)])
            }
            guard let object = self.object(path) else { return Self.status(404, reason: "NotFound", message: "\(path) not found") }
            return Self.json(object)
        case .patch where path.hasSuffix("/scale"):
            let target = String(path.dropLast("/scale".count))
            let patch = try JSONValue.parse(body.readableBytesView)
            guard var object = self.object(target), let replicas = patch.value(at: "spec.replicas") else {
                return Self.status(404, reason: "NotFound", message: "\(target) not found")
            }
            var spec = object["spec"] ?? [:]
            spec["replicas"] = replicas
            object["spec"] = spec
            put(target, object)
            return Self.json(["kind": "Scale", "spec": ["replicas": replicas]])
        case .patch:
            guard request.headers[.contentType] == "application/apply-patch+yaml", query.get("fieldManager") == "envhub" else {
                return Self.status(415, reason: "UnsupportedMediaType", message: "only server-side apply is served here")
            }
            let object = try JSONValue.parse(body.readableBytesView)
            guard (try? ResourcePath.object(object)) == path else {
                return Self.status(400, reason: "BadRequest", message: "the object does not belong at \(path)")
            }
            put(path, object)
            return Self.json(self.object(path) ?? object)
        case .delete:
            guard self.object(path) != nil else { return Self.status(404, reason: "NotFound", message: "\(path) not found") }
            remove(path)
            return Self.json(["kind": "Status", "status": "Success"])
        default:
            return Self.status(405, reason: "MethodNotAllowed", message: "")
        }
    }

    /// Events after `version` in the collection, then new ones as they happen, until the
    /// watches are ended; each event written in two pieces, so a line spans chunks.
    private func watch(_ collection: String, from version: Int, selector: String?) -> Response {
        let (gone, generation, expiry) = state.withLockedValue { (version < $0.oldestKept, $0.watchGeneration, $0.expiryGeneration) }
        if gone { return Self.status(410, reason: "Expired", message: "too old resource version: \(version)") }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { writer in
            var sent = version
            let id = UUID()
            let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            self.changed.withLockedValue { $0[id] = continuation }
            defer { _ = self.changed.withLockedValue { $0.removeValue(forKey: id) } }
            self.state.withLockedValue { $0.watchesStarted += 1 }
            var wakeUps = stream.makeAsyncIterator()
            while true {
                let (events, ended, forgotten) = self.state.withLockedValue { state in
                    (state.history.filter { $0.0 > sent && Self.inCollection($0.2, collection) && Self.matches($0.3, selector) },
                     state.watchGeneration != generation || state.closed, state.expiryGeneration != expiry)
                }
                if forgotten {
                    let error: JSONValue = ["type": "ERROR", "object": ["kind": "Status", "code": 410, "reason": "Expired", "message": "gone"]]
                    try await writer.write(ByteBuffer(string: error.json + "\n"))
                    break
                }
                for (eventVersion, type, _, object) in events {
                    let line = (["type": .string(type), "object": object] as JSONValue).json + "\n"
                    let middle = line.index(line.startIndex, offsetBy: line.count / 2)
                    try await writer.write(ByteBuffer(string: String(line[..<middle])))
                    try await writer.write(ByteBuffer(string: String(line[middle...])))
                    sent = eventVersion
                }
                if ended { break }
                guard await wakeUps.next() != nil else { break }
            }
            try await writer.finish(nil)
        })
    }

    /// The pod's lines (the last `tail` of them), then with `follow` the ones written later,
    /// until the watches are ended or the pod goes.
    private func log(_ pod: String, tail: Int?, follow: Bool) -> Response {
        guard object(pod) != nil else { return Self.status(404, reason: "NotFound", message: "\(pod) not found") }
        let (lines, generation) = state.withLockedValue { state in
            if follow { state.logFollowersStarted += 1 }
            return (state.logs[pod] ?? [], state.watchGeneration)
        }
        let first = tail.map { Array(lines.suffix($0)) } ?? lines
        let text = first.map { $0 + "\n" }.joined()
        guard follow else { return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: text))) }
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody { writer in
            var sent = lines.count
            let id = UUID()
            let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            self.changed.withLockedValue { $0[id] = continuation }
            defer { _ = self.changed.withLockedValue { $0.removeValue(forKey: id) } }
            if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
            var wakeUps = stream.makeAsyncIterator()
            while true {
                let (fresh, ended) = self.state.withLockedValue { state in
                    (Array((state.logs[pod] ?? []).dropFirst(sent)), state.watchGeneration != generation || state.closed || state.objects[pod] == nil)
                }
                if !fresh.isEmpty {
                    try await writer.write(ByteBuffer(string: fresh.map { $0 + "\n" }.joined()))
                    sent += fresh.count
                }
                if ended { break }
                guard await wakeUps.next() != nil else { break }
            }
            try await writer.finish(nil)
        })
    }

    /// Waits for `delay`, or until the test ends if that comes first (so a fault can hold an
    /// answer back far longer than a client waits, without holding up the server's stop).
    private func pause(_ delay: Duration) async {
        guard delay > .zero else { return }
        let id = UUID()
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        changed.withLockedValue { $0[id] = continuation }
        defer { _ = changed.withLockedValue { $0.removeValue(forKey: id) } }
        let timer = Task {
            try? await Task.sleep(for: delay)
            continuation.finish()
        }
        defer { timer.cancel() }
        var wakeUps = stream.makeAsyncIterator()
        while !state.withLockedValue({ $0.closed }), await wakeUps.next() != nil {}
    }

    private func notify() {
        for continuation in changed.withLockedValue({ Array($0.values) }) { continuation.yield() }
    }

    // MARK: storage rules

    private static func store(_ path: String, _ object: JSONValue, into state: inout State) {
        let existing = state.objects[path]
        var object = object
        var metadata = object["metadata"] ?? [:]
        metadata["uid"] = existing?.value(at: "metadata.uid") ?? .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = existing?.value(at: "metadata.creationTimestamp") ?? "2026-11-23T00:00:00Z"
        metadata["resourceVersion"] = nil
        object["metadata"] = metadata
        if let existing, Self.withoutVersion(existing) == object { return }  // no change, no new version
        state.version += 1
        metadata["resourceVersion"] = .string(String(state.version))
        object["metadata"] = metadata
        state.objects[path] = object
        state.history.append((state.version, existing == nil ? "ADDED" : "MODIFIED", path, object))
    }

    private static func runPods(of path: String, _ state: inout State) {
        guard var workload = state.objects[path], let namespace = workload.value(at: "metadata.namespace")?.string,
              let name = workload.value(at: "metadata.name")?.string else { return }
        let replicas = workload.value(at: "spec.replicas")?.int ?? 1
        let image = workload.value(at: "spec.template.spec.containers")?.array?.first?["image"]?.string ?? ""
        let broken = image.contains("broken")
        let pods = "/api/v1/namespaces/\(namespace)/pods"
        for index in 0..<max(replicas, 8) {
            let podPath = "\(pods)/\(name)-\(index)"
            guard index < replicas else {
                if state.objects[podPath] != nil { delete(podPath, from: &state) }
                continue
            }
            let containerState: JSONValue = broken
                ? ["waiting": ["reason": "ImagePullBackOff", "message": .string("Back-off pulling image \"\(image)\"")]]
                : ["running": ["startedAt": "2026-11-23T00:00:00Z"]]
            store(podPath, [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string("\(name)-\(index)"), "namespace": .string(namespace),
                             "labels": workload.value(at: "spec.template.metadata.labels") ?? [:]],
                "status": [
                    "conditions": [["type": "PodScheduled", "status": "True"], ["type": "Ready", "status": broken ? "False" : "True"]],
                    "containerStatuses": [["name": "main", "state": containerState]],
                ],
            ], into: &state)
        }
        workload["status"] = ["replicas": .number(Double(replicas)), "readyReplicas": .number(Double(broken ? 0 : replicas))]
        store(path, workload, into: &state)
    }

    private static func delete(_ path: String, from state: inout State) {
        var doomed = [path]
        let parts = path.split(separator: "/")
        if parts.count >= 3, ["deployments", "statefulsets"].contains(parts[parts.count - 2]), let namespace = parts.firstIndex(of: "namespaces") {
            let pods = "/api/v1/namespaces/\(parts[namespace + 1])/pods/\(parts[parts.count - 1])-"
            doomed += state.objects.keys.filter { $0.hasPrefix(pods) }
        }
        if path.hasPrefix("/api/v1/namespaces/"), path.split(separator: "/").count == 4 {
            let name = path.split(separator: "/")[3]
            doomed += state.objects.keys.filter { $0.contains("/namespaces/\(name)/") }
        }
        for path in doomed {
            guard var object = state.objects.removeValue(forKey: path) else { continue }
            state.version += 1
            var metadata = object["metadata"] ?? [:]
            metadata["resourceVersion"] = .string(String(state.version))
            object["metadata"] = metadata
            state.history.append((state.version, "DELETED", path, object))
        }
    }

    private static func withoutVersion(_ object: JSONValue) -> JSONValue {
        var object = object
        var metadata = object["metadata"] ?? [:]
        metadata["resourceVersion"] = nil
        object["metadata"] = metadata
        return object
    }

    static let plurals: Set<String> = [
        "namespaces", "secrets", "services", "resourcequotas", "limitranges", "persistentvolumeclaims", "pods", "events",
        "deployments", "statefulsets", "networkpolicies", "horizontalpodautoscalers",
    ]

    static func isCollection(_ path: String) -> Bool { plurals.contains(String(path.split(separator: "/").last ?? "")) }

    static func inCollection(_ objectPath: String, _ collection: String) -> Bool {
        // A namespaced kind listed across namespaces: /apis/apps/v1/deployments.
        let plural = collection.split(separator: "/").last.map(String.init) ?? ""
        if plural != "namespaces", !collection.contains("/namespaces/") {
            let prefix = String(collection.dropLast(plural.count)) + "namespaces/"
            let parts = objectPath.split(separator: "/")
            return objectPath.hasPrefix(prefix) && parts.count >= 2 && parts[parts.count - 2] == plural
                && objectPath.dropFirst(prefix.count).split(separator: "/").count == 3
        }
        guard objectPath.hasPrefix(collection + "/") else { return false }
        return !objectPath.dropFirst(collection.count + 1).contains("/")
    }

    /// `a=b,c=d`
    static func matches(_ object: JSONValue, _ selector: String?) -> Bool {
        guard let selector, !selector.isEmpty else { return true }
        let labels = object.value(at: "metadata.labels")
        return selector.split(separator: ",").allSatisfy { term in
            let parts = term.split(separator: "=", maxSplits: 1)
            return parts.count == 2 && labels?[String(parts[0])]?.string == String(parts[1])
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.json)))
    }

    static func status(_ code: Int, reason: String, message: String, headers: HTTPFields = [:]) -> Response {
        var response = json(["kind": "Status", "apiVersion": "v1", "status": "Failure", "message": .string(message),
                             "reason": .string(reason), "code": .number(Double(code))], status: .init(code: code))
        response.headers.append(contentsOf: headers)
        return response
    }
}
