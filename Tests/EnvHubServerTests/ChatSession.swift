import EnvHubTestSupport
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// A chat socket (`/api/chat`) in a test: sends JSON frames and keeps every frame received,
/// which `next` hands out in order.
final class ChatSession: Sendable {
    private let outbound: WebSocketOutboundWriter
    private let received = NIOLockedValueBox<(frames: [String], cursor: Int, ended: Bool)>(([], 0, false))

    init(outbound: WebSocketOutboundWriter) {
        self.outbound = outbound
    }

    /// Opens a socket to `port` as the holder of `token`, runs `body`, closes; returns the
    /// close frame the hub sent, if any.
    @discardableResult
    static func open(
        port: Int, token: String, _ body: @escaping @Sendable (ChatSession) async throws -> Void
    ) async throws -> WebSocketCloseFrame? {
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)/api/chat",
            configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]),
            logger: Logger(label: "chat-test", factory: { _ in SwiftLogNoOpLogHandler() })
        ) { inbound, outbound, _ in
            let session = ChatSession(outbound: outbound)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message { session.received.withLockedValue { $0.frames.append(text) } }
                    }
                    session.received.withLockedValue { $0.ended = true }
                }
                try await body(session)
                try await outbound.close(.normalClosure, reason: nil)
                try await group.waitForAll()
            }
        }
    }

    func send(_ frame: [String: Any]) async throws {
        try await outbound.write(.text(String(decoding: try JSONSerialization.data(withJSONObject: frame), as: UTF8.self)))
    }

    func sendText(_ text: String) async throws { try await outbound.write(.text(text)) }
    func sendBinary(_ bytes: [UInt8]) async throws { try await outbound.write(.binary(ByteBuffer(bytes: bytes))) }

    /// The next frame of `type` (after the last one handed out) that `matches`, waiting for it.
    func next(
        _ type: String, timeout: Duration = .seconds(20), where matches: @escaping @Sendable ([String: Any]) -> Bool = { _ in true }
    ) async throws -> [String: Any] {
        let text = try await waitFor("a \(type) frame (after \(received.withLockedValue { $0.frames }))", timeout: timeout) { () -> String? in
            self.received.withLockedValue { state in
                for index in state.cursor..<state.frames.count {
                    let object = Self.object(state.frames[index])
                    if object["type"] as? String == type, matches(object) {
                        state.cursor = index + 1
                        return state.frames[index]
                    }
                }
                return nil
            }
        }
        return Self.object(text)
    }

    /// Every frame of `type` received so far.
    func all(_ type: String) -> [[String: Any]] {
        received.withLockedValue { $0.frames }.map(Self.object).filter { $0["type"] as? String == type }
    }

    var ended: Bool { received.withLockedValue { $0.ended } }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

extension Dictionary where Key == String, Value == Any {
    /// `message.id` of a message, ack or edited frame.
    var messageID: Int? { (self["message"] as? [String: Any])?["id"] as? Int }
    var messageText: String? { (self["message"] as? [String: Any])?["text"] as? String }
}
