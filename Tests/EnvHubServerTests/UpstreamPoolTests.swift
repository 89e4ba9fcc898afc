import EnvHubRuntime
import EnvHubTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import EnvHubServer

/// The gateway's pool of idle connections to apps (`UpstreamPool`), over real sockets.
@Suite struct UpstreamPoolTests {
    /// A connection that closes while it waits in the pool (the app closed it, or the
    /// keep-alive timeout did) is let go of, and so is its app's entry: a hub that runs for
    /// months keeps nothing for apps that stopped or started again on another port.
    @Test func aConnectionThatClosesInThePoolIsLetGoOf() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = NIOLockedValueBox<[any Channel]>([])
        let app = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let upstream = Endpoint(host: "127.0.0.1", port: try #require(app.localAddress?.port))
        let loop = group.next()
        let pool = try await loop.submit { NIOLoopBound(UpstreamPool<ByteBuffer, ByteBuffer>(codec: { _ in }), eventLoop: loop) }.get()
        @Sendable func waiting() async throws -> [Endpoint: Int] { try await loop.submit { pool.value.waiting }.get() }

        // Two connections come back to the pool after their exchanges.
        for _ in 0..<2 {
            let connected = loop.makePromise(of: Void.self)
            loop.execute {
                pool.value.newConnection(
                    to: upstream, on: loop, idleTimeout: .seconds(60), keepAliveTimeout: .seconds(60), wanted: { true }
                ) { result in
                    switch result {
                    case .success(let connection):
                        pool.value.put(connection)
                        connected.succeed()
                    case .failure(let error):
                        connected.fail(error)
                    }
                }
            }
            try await connected.futureResult.get()
        }
        #expect(try await waiting() == [upstream: 2])
        _ = try await waitFor("the app to have accepted both") { accepted.withLockedValue { $0.count } == 2 ? true : nil }

        // The app closes one, then the other.
        try await accepted.withLockedValue { $0[0] }.close()
        _ = try await waitFor("the first closed connection to leave the pool") { try await waiting() == [upstream: 1] ? true : nil }
        try await accepted.withLockedValue { $0[1] }.close()
        _ = try await waitFor("the second closed connection to leave the pool") { try await waiting().isEmpty ? true : nil }
        #expect(try await loop.submit { pool.value.idleConnection(to: upstream) == nil }.get())
        try await app.close()
    }
}
