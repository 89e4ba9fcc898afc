import NIOCore

/// One end of a byte pipe between two channels on the same event loop, after
/// swift-nio-examples' connect-proxy `GlueHandler`: what one channel reads its partner writes.
///
/// Back-pressure: a channel reads only while its partner can write, so a slow side slows the
/// other instead of filling memory. Ends: end of input on one side half-closes the other's
/// output (WebSocket close handshakes finish on their own); a closed or failed side closes the
/// other. A server asked to quiesce (graceful shutdown) closes the tunnel.
final class ByteGlue: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: ByteGlue?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    private init() {}

    /// Two ends glued to each other.
    static func matchedPair() -> (ByteGlue, ByteGlue) {
        let first = ByteGlue()
        let second = ByteGlue()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    // MARK: what the partner asks of this end

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerEndedInput() { context?.close(mode: .output, promise: nil) }
    private func partnerClosed() { context?.close(promise: nil) }
    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        partner?.partnerBecameWritable()  // the partner may have held a read until this end existed
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil  // breaks the cycle
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    /// Passed on so Hummingbird's request loop, still waiting behind the glue, sees the end.
    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClosed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // Not passed on: Hummingbird's loop would answer it by closing this side's output.
            partner?.partnerEndedInput()
        } else if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.partnerClosed()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

@available(*, unavailable)
extension ByteGlue: Sendable {}
