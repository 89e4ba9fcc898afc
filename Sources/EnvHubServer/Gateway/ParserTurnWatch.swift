import NIOCore
import NIOHTTP1

/// Tells the byte path at the front of the pipeline (`GatewayByteProxy`) where NIO's parser
/// ended a request and where an answer ended, so that it can take the connection back between
/// requests (`ParserTurn`). Sits right behind NIO's request decoder, where both are HTTP/1
/// parts still; tells by outbound user events, which reach the front through the response
/// encoder.
final class ParserTurnWatch: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Event {
        /// The parser read a request's end.
        case requestEnded
        /// The last part of an answer has been written.
        case answerEnded
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { context.triggerUserOutboundEvent(Event.requestEnded, promise: nil) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        context.write(data, promise: promise)
        context.triggerUserOutboundEvent(Event.answerEnded, promise: nil)
    }
}

@available(*, unavailable)
extension ParserTurnWatch: Sendable {}
