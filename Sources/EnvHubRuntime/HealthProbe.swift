import AsyncHTTPClient
import EnvHubCore
import NIOCore
import NIOPosix

/// Asks whether a component is ready, by its template's health check.
public struct HealthProbe: Sendable {
    /// One client for the process. Refused connections fail at once instead of being retried,
    /// since the probe retries on its own schedule.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(1)
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    static func isHealthy(port: Int, check: HealthCheck) async -> Bool {
        switch check {
        case .http(let path): await isHealthy(port: port, path: path)
        case .tcp: await accepts(port: port)
        }
    }

    /// Whether 127.0.0.1:port accepts a TCP connection right now.
    public static func accepts(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    /// Whether `http://127.0.0.1:port{path}` answers 2xx right now.
    static func isHealthy(port: Int, path: String) async -> Bool {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .GET
        guard let response = try? await client.execute(request, timeout: .seconds(2)) else { return false }
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return (200..<300).contains(response.status.code)
    }
}
