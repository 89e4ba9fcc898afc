import AsyncHTTPClient
import NIOCore
import NIOPosix

/// Asks a component's health path until it answers 2xx.
struct HealthProbe: Sendable {
    /// One client for the process. Refused connections fail at once instead of being retried,
    /// since the probe retries on its own schedule.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(1)
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    /// Whether `http://127.0.0.1:port{path}` answers 2xx right now.
    static func isHealthy(port: Int, path: String) async -> Bool {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .GET
        guard let response = try? await client.execute(request, timeout: .seconds(2)) else { return false }
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return (200..<300).contains(response.status.code)
    }
}
