import NIOCore
import NIOHTTP1

/// Refuses an app's answer whose Transfer-Encoding does not end in `chunked`
/// (`HeadBytes.endsInChunked`), on the connections to apps that NIO's parser reads (the
/// gateway's NIO path): chunked is the one coding the gateway can pass on, since the field is
/// hop-by-hop and the client asked for no other (RFC 9112 §6.1).
///
/// The check sits between that parser and HTTPTypes' codec, because the codec trims the white
/// space after a value: `chunked<TAB>`, which the parser has framed by the connection's end,
/// would come out of it as `chunked`, and the client would be sent the chunk framing as the
/// body. The refusal travels as an error, which `UpstreamTrouble` turns into a 502 (or the
/// answer cut short), and nothing of the answer is passed on.
final class AnswerCodingCheck: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    /// The answer was refused: nothing more is read from this connection.
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if case .head(let head) = unwrapInboundIn(data), let last = head.headers["transfer-encoding"].last {
            var value = last
            guard value.withUTF8({ HeadBytes.endsInChunked(UnsafeRawBufferPointer($0)) }) else {
                refused = true
                context.fireErrorCaught(UnpassableTransferCoding())
                return
            }
        }
        context.fireChannelRead(data)
    }
}

/// An app answered in a transfer coding other than `chunked` (`AnswerCodingCheck`).
struct UnpassableTransferCoding: Error, CustomStringConvertible {
    var description: String { "the answer's Transfer-Encoding does not end in chunked" }
}
