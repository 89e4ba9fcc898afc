import HTTPTypes
import NIOCore

/// One request the byte path (`GatewayByteProxy`) forwards, and the app's response read as
/// bytes: the head collected and rewritten for the client (`UpstreamResponseHead`, 1xx heads
/// passed on before it), then the body relayed as it comes and ended by its framing.
final class ByteExchange: ForwardedExchange<ByteBuffer, ByteBuffer> {
    /// The head the app is sent.
    let head: ByteBuffer
    /// Request body bytes not yet sent to the app.
    var bodyRemaining: Int
    /// The response's head, once it has arrived whole.
    private(set) var response: UpstreamResponseHead?
    /// Response bytes read while the head is incomplete.
    private var headBytes: ByteBuffer?
    private var lengthRemaining = 0
    private var chunks = ChunkedBodyScanner()

    init(target: ProxyTarget, head: ByteBuffer, bodyLength: Int, method: HTTPRequest.Method, activity: ActivityTracker.Shard) {
        self.head = head
        self.bodyRemaining = bodyLength
        super.init(target: target, method: method, activity: activity)
    }

    /// What the bytes read from the app amount to.
    enum Relay {
        /// More of the response is to come.
        case more
        /// The response is complete; `extraBytes`: the app sent bytes after it.
        case ended(extraBytes: Bool)
        /// The head or the chunked framing is malformed (`responseStarted`: whether the
        /// client has had part of the answer).
        case malformed
    }

    /// Reads `bytes` from the app, handing what goes to the client to `write`, in order.
    /// `closeClient`: the client's connection closes after this answer.
    func relay(_ bytes: ByteBuffer, closeClient: Bool, write: (ByteBuffer) -> Void) -> Relay {
        var bytes = bytes
        /// The response's head, when it arrived with these bytes: written with the first of the body.
        var clientHead: ByteBuffer?
        /// The bytes from the app's head on, when the head goes to the client as it came: then it
        /// and the body after it go on as one slice of them.
        var headAsItCame: ByteBuffer?
        if response == nil {
            if var collected = headBytes {
                collected.writeBuffer(&bytes)
                bytes = collected
            }
            headBytes = nil
            while response == nil {
                switch UpstreamResponseHead.scan(bytes, for: target, headRequest: headRequest, closeClient: closeClient) {
                case .incomplete:
                    headBytes = bytes
                    return .more
                case .malformed:
                    upstream?.reusable = false
                    return .malformed
                case .head(var head):
                    let fromHead = bytes
                    bytes.moveReaderIndex(forwardBy: head.headLength)
                    guard !head.isInformational else {
                        write(head.clientHead)
                        continue
                    }
                    if head.asItCame {
                        headAsItCame = fromHead
                    } else {
                        clientHead = head.clientHead
                    }
                    head.clientHead = ByteBuffer()  // one reference less: the body goes into the written head's room in place
                    responseStarted = true
                    response = head
                    if case .length(let length) = head.framing { lengthRemaining = length }
                    if !head.reusable { upstream?.reusable = false }
                }
            }
        }
        guard let response else { return .more }
        let body: ByteBuffer
        let relayed: Relay
        switch response.framing {
        case .noBody:
            body = ByteBuffer()
            relayed = .ended(extraBytes: bytes.readableBytes > 0)
        case .length:
            body = bytes.readPrefix(upTo: lengthRemaining)
            lengthRemaining -= body.readableBytes
            relayed = lengthRemaining == 0 ? .ended(extraBytes: bytes.readableBytes > 0) : .more
        case .chunked:
            switch bytes.withUnsafeReadableBytes({ chunks.scan($0) }) {
            case .more:
                body = bytes
                relayed = .more
            case .ends(let length):
                body = bytes.readPrefix(upTo: length)
                relayed = .ended(extraBytes: bytes.readableBytes > 0)
            case .malformed:
                // With the head in these same bytes, nothing of the answer has gone out: the
                // client can still be told (502) instead of losing the connection.
                if clientHead != nil || headAsItCame != nil { responseStarted = false }
                return .malformed
            }
        case .untilClose:
            body = bytes
            relayed = .more
        }
        if var headAsItCame {
            write(headAsItCame.readSlice(length: response.headLength + body.readableBytes)!)
        } else {
            Self.write(head: &clientHead, body: body, to: write)
        }
        return relayed
    }

    /// Writes the head, if any, then the body bytes: in one buffer when they fit in the room
    /// the head has after it (one write instead of two, for the small answers most requests
    /// get). `head` is taken out of the optional (`inout`, `take()`): a copy would share its
    /// storage and the body's write would then copy it.
    private static func write(head: inout ByteBuffer?, body: ByteBuffer, to write: (ByteBuffer) -> Void) {
        guard var head = head.take() else {
            if body.readableBytes > 0 { write(body) }
            return
        }
        if body.readableBytes <= head.writableBytes {
            head.writeImmutableBuffer(body)
            write(head)
        } else {
            write(head)
            write(body)
        }
    }
}
