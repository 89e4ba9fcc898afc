import AsyncHTTPClient
import Foundation
import NIOCore

/// One change to a watched collection.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED"
    }

    public let kind: Kind
    public let object: JSONValue
}

extension KubernetesClient {
    /// Every change to a collection, for as long as the caller listens: a list first (each
    /// object as `added`), then a watch from the list's resourceVersion, resumed from the last
    /// version seen whenever the server ends it, listed afresh when the server has forgotten
    /// that version (410 Gone, as an answer or an ERROR event). Failures are retried with
    /// back-off; the stream only ends when the caller stops listening.
    public func changes(_ path: String, labelSelector: String? = nil) -> AsyncStream<WatchEvent> {
        AsyncStream { continuation in
            let task = Task {
                var version: String?
                var failures = 0
                while !Task.isCancelled {
                    do {
                        if version == nil {
                            let (items, listed) = try await list(path, labelSelector: labelSelector)
                            for item in items { continuation.yield(WatchEvent(kind: .added, object: item)) }
                            version = listed
                        }
                        version = try await watchOnce(path, labelSelector: labelSelector, from: version ?? "") { event in
                            continuation.yield(event)
                        }
                        failures = 0
                    } catch KubernetesError.status(410, _, _) {
                        version = nil  // forgotten: list again
                    } catch {
                        if Task.isCancelled { break }
                        failures += 1
                        try? await Task.sleep(for: delay(failures, retryAfter: nil))
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// One watch request from `version`; returns the last version seen when the server ends it.
    func watchOnce(
        _ path: String, labelSelector: String?, from version: String, _ deliver: (WatchEvent) -> Void
    ) async throws -> String {
        var query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "300"), ("resourceVersion", version)]
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        let response = try await http.execute(try request(.GET, path, query: query, body: nil, contentType: nil), deadline: .distantFuture)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw KubernetesError.from(status: status, body: try await response.body.collect(upTo: 1 << 20))
        }
        var lastVersion = version
        var lines = LineSplitter()
        for try await chunk in response.body {
            // Events are JSON lines; a chunk may end in the middle of one.
            for line in lines.split(chunk) where line.readableBytes > 0 {
                let event = try JSONValue.parse(line.readableBytesView)
                let object = event["object"] ?? [:]
                switch event["type"]?.string {
                case "ERROR":
                    let code = object["code"]?.int ?? 500
                    throw KubernetesError.status(code, reason: object["reason"]?.string ?? "", message: object["message"]?.string ?? "")
                case "BOOKMARK":
                    break
                case let type?:
                    guard let kind = WatchEvent.Kind(rawValue: type) else { continue }
                    deliver(WatchEvent(kind: kind, object: object))
                case nil:
                    continue
                }
                if let seen = object.value(at: "metadata.resourceVersion")?.string { lastVersion = seen }
            }
        }
        return lastVersion
    }
}

/// Cuts a stream of chunks into lines (without their newlines); a line may span chunks.
struct LineSplitter {
    private var pending = ByteBuffer()

    mutating func split(_ chunk: ByteBuffer) -> [ByteBuffer] {
        var chunk = chunk
        pending.writeBuffer(&chunk)
        var lines: [ByteBuffer] = []
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              let line = pending.readSlice(length: newline - pending.readerIndex) {
            pending.moveReaderIndex(forwardBy: 1)
            lines.append(line)
        }
        pending.discardReadBytes()
        return lines
    }
}
