import Hummingbird
import HummingbirdTesting

extension ApplicationProtocol {
    /// `test(_:_:)` whose server always stops gracefully, also when `body` throws: the
    /// error goes on after the server has stopped. (A throw out of `test(.live)` cancels the
    /// server's task; a connection it had accepted but not yet begun to serve then makes NIO
    /// trap, apple/swift-nio#3481, and the trap ends the whole test run, not just the test.)
    public func testStoppingGracefully<Value>(
        _ setup: TestingSetup, _ body: @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        let outcome: Result<Value, any Error> = try await test(setup) { client in
            do {
                return .success(try await body(client))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
