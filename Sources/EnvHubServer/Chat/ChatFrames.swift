import EnvHubCore
import Foundation
import NIOCore

/// A frame from a client (docs/chat.md): `type` says which fields matter.
struct ClientFrame: Decodable {
    let type: String
    let room: String?
    let since: Int64?
    let text: String?
    let key: String?
    let id: Int64?
    let ref: String?

    static let maxBytes = 64 << 10
    static let maxRefLength = 100
}

/// A frame to a client; absent fields are left out.
struct ServerFrame: Encodable {
    let type: String
    var room: String?
    var message: ChatMessageJSON?
    var id: Int64?
    var user: String?
    var online: [String]?
    var last: Int64?
    var truncated: Bool?
    var key: String?
    var ref: String?

    init(_ type: String, room: RoomName? = nil) {
        self.type = type
        self.room = room?.rawValue
    }

    static func message(_ type: String, _ message: ChatMessage) -> ServerFrame {
        var frame = ServerFrame(type, room: message.room)
        frame.message = ChatMessageJSON(message)
        return frame
    }

    var encoded: ByteBuffer { Self.encode(self) }

    /// Encoding strings and numbers cannot fail; an empty object would be a bug, not a crash.
    static func encode(_ value: some Encodable) -> ByteBuffer {
        (try? JSONWriter.encode(value)) ?? ByteBuffer(string: "{}")
    }
}

/// An `error` frame: the socket stays open.
struct ErrorFrame: Encodable {
    let type = "error"
    let code: String
    let message: String
    let ref: String?

    init(_ code: String, _ message: String, ref: String?) {
        self.code = code
        self.message = message
        self.ref = ref
    }

    init(_ error: EnvHubError, ref: String?) {
        self.init(error.code == "invalid_field" || error.code == "not_found" ? error.code : "unavailable", error.message, ref: ref)
    }
}

/// A text frame as a server sends it (unmasked, final), header and payload in one buffer:
/// encoded once for a message and written as is to every socket it goes to (RFC 6455 §5.2).
enum WireFrame {
    static func text(_ payload: ByteBuffer) -> ByteBuffer {
        let length = payload.readableBytes
        var frame = ByteBuffer()
        frame.reserveCapacity(length + 10)
        frame.writeInteger(UInt8(0x81))  // FIN, opcode 1 (text)
        switch length {
        case ..<126: frame.writeInteger(UInt8(length))
        case ...Int(UInt16.max):
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        default:
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        var payload = payload
        frame.writeBuffer(&payload)
        return frame
    }
}
