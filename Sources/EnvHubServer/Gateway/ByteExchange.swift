import NIOCore

/// One request the byte path (`GatewayByteProxy`) forwards, and the app's response read as
/// bytes: the head collected and rewritten for the client (`UpstreamResponseHead`, 1xx heads
/// passed on before it), then the body relayed as it comes and ended by its framing.
final class ByteExchange: ForwardedExchange<ByteBuffer, ByteBuffer> {
    /// The head the app is sent.
    let head: ByteBuffer
    let headRequest: Bool
    /// Request body bytes not yet sent to the app.
    var bodyRemaining: Int
    /// The response's head, once it has arrived whole.
    private(set) var response: UpstreamResponseHead?
    /// Response bytes read while the head is incomplete.
    private var headBytes: ByteBuffer?
    private var lengthRemaining = 0
    private var chunks = ChunkedBodyScanner()

    init(target: ProxyTarget, head: ByteBuffer, bodyLength: Int, headRequest: Bool, activity: ActivityTracker) {
        self.head = head
        self.bodyRemaining = bodyLength
        self.headRequest = headRequest
        super.init(target: target, activity: activity)
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
                case .head(let head):
                    bytes.moveReaderIndex(forwardBy: head.headLength)
                    write(head.clientHead)
                    guard !head.isInformational else { continue }
                    responseStarted = true
                    response = head
                    if case .length(let length) = head.framing { lengthRemaining = length }
                    if !head.reusable { upstream?.reusable = false }
                }
            }
        }
        guard let response else { return .more }
        switch response.framing {
        case .noBody:
            return .ended(extraBytes: bytes.readableBytes > 0)
        case .length:
            let slice = bytes.readPrefix(upTo: lengthRemaining)
            lengthRemaining -= slice.readableBytes
            if slice.readableBytes > 0 { write(slice) }
            return lengthRemaining == 0 ? .ended(extraBytes: bytes.readableBytes > 0) : .more
        case .chunked:
            guard bytes.readableBytes > 0 else { return .more }
            switch bytes.withUnsafeReadableBytes({ chunks.scan($0) }) {
            case .more:
                write(bytes)
                return .more
            case .ends(let length):
                write(bytes.readPrefix(upTo: length))
                return .ended(extraBytes: bytes.readableBytes > 0)
            case .malformed:
                return .malformed
            }
        case .untilClose:
            if bytes.readableBytes > 0 { write(bytes) }
            return .more
        }
    }
}
