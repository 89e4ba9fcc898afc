import AsyncHTTPClient
import Foundation
import NIOCore

extension KubernetesClient {
    /// The last `tailLines` lines of a pod's container (`podPath` as from `ResourcePath`).
    public func podLog(_ podPath: String, tailLines: Int) async throws -> [String] {
        let text = String(buffer: try await exchange(.GET, podPath + "/log", query: [("tailLines", String(tailLines))]))
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The lines a pod's container writes, as it writes them, until the container ends or the
    /// caller stops listening; `tailLines` earlier ones first (0 for none, nil for all).
    public func followPodLog(_ podPath: String, tailLines: Int?) -> AsyncThrowingStream<String, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var query = [("follow", "true")]
                    if let tailLines { query.append(("tailLines", String(tailLines))) }
                    let response = try await http.execute(
                        try request(.GET, podPath + "/log", query: query, body: nil, contentType: nil), deadline: .distantFuture)
                    let status = Int(response.status.code)
                    guard (200..<300).contains(status) else {
                        throw KubernetesError.from(status: status, body: try await response.body.collect(upTo: 1 << 20))
                    }
                    var lines = LineSplitter()
                    for try await chunk in response.body {
                        for line in lines.split(chunk) { continuation.yield(String(buffer: line)) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
