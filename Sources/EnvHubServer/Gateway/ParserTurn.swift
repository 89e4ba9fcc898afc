import NIOCore

/// One request the gateway's byte path (`GatewayByteProxy`) lets NIO's parser read and the
/// handlers behind it answer (the hub's pages and API, gateway requests that are not plain),
/// after which the connection comes back to the byte path.
///
/// Two parsers reading one stream is how requests are smuggled, so the byte path lends a
/// request only when it can find the request's end by itself, as strictly as it reads its
/// own (`scan`), and takes the connection back only when NIO's parser reported that end at
/// exactly the same byte: the request's last byte goes to the parser on its own, and an end
/// reported before it, or none after it, leaves the connection to NIO's parser for good, from
/// this request on, where the two last agreed. So a difference between the two readings can
/// cost speed, never a request read twice or by halves.
struct ParserTurn {
    private enum Framing {
        case length(remaining: Int)
        case chunked(ChunkedBodyScanner)
    }

    /// Bytes of the head not yet counted.
    private var headRemaining: Int
    private var framing: Framing
    /// All of the request went to the parser, which reported its end at its last byte.
    private(set) var requestRead = false
    /// Field lines (with their CRLF, as ranges of the head) the parser is not to read: Upgrade
    /// fields asking for another protocol than WebSocket (curl `--http2`'s `h2c`), which the
    /// hub ignores, as RFC 9110 §7.8 allows. NIO's parser would read the request as a switch
    /// of protocols and read nothing more of the connection.
    private(set) var ignoredLines: [Range<Int>] = []

    enum Scan {
        /// The head has not arrived whole yet.
        case incomplete
        case turn(ParserTurn)
        /// A request the byte path will not find the end of (or after which the connection
        /// ends or changes protocol): the connection stays with NIO's parser.
        case forGood
    }

    /// What the request at the start of `buffer` (not a plain gateway request) is.
    ///
    /// Lent: HTTP/1.1, not CONNECT, without an Upgrade to WebSocket or `Connection: close`,
    /// strict field lines, and a body framed by one Content-Length, by
    /// `Transfer-Encoding: chunked` alone, or not at all.
    static func scan(_ buffer: ByteBuffer) -> Scan {
        buffer.withUnsafeReadableBytes { bytes in
            let length: Int
            switch HeadBytes.headEnd(bytes, limit: PlainGatewayRequest.maxHeadLength) {
            case .notYet: return .incomplete
            case .never: return .forGood
            case .at(let end): length = end
            }
            var ignoredLines: [Range<Int>] = []
            guard let framing = framing(bytes, headLength: length, ignoring: &ignoredLines) else { return .forGood }
            var turn = ParserTurn(headRemaining: length - ignoredLines.reduce(0) { $0 + $1.count }, framing: framing)
            turn.ignoredLines = ignoredLines
            return .turn(turn)
        }
    }

    private static func framing(_ bytes: UnsafeRawBufferPointer, headLength: Int, ignoring ignoredLines: inout [Range<Int>]) -> Framing? {
        guard let line = HeadBytes.requestLine(bytes, headLength: headLength),
              !HeadBytes.equals(bytes, line.method, "connect"),
              let fields = HeadBytes.fields(bytes, from: line.end, to: headLength, allowObsText: true)
        else { return nil }
        var contentLength: Int?
        var chunked = false
        var connectionOptions: Set<String> = []
        for field in fields {
            if HeadBytes.equals(bytes, field.name, "content-length") {
                guard contentLength == nil, let length = HeadBytes.contentLength(bytes, field) else { return nil }
                contentLength = length
            } else if HeadBytes.equals(bytes, field.name, "transfer-encoding") {
                guard !chunked, HeadBytes.equals(bytes, field.value, "chunked"), HeadBytes.onlySpacesFollow(bytes, field)
                else { return nil }
                chunked = true
            } else if HeadBytes.equals(bytes, field.name, "connection") {
                ForwardedHeaders.addConnectionOptions(of: HeadBytes.string(bytes, field.value), to: &connectionOptions)
            } else if HeadBytes.equals(bytes, field.name, "upgrade") {
                guard !WebSocketTunnel.asksForWebSocket(upgrade: HeadBytes.string(bytes, field.value)) else { return nil }
                var lineEnd = field.value.upperBound  // past any white space after the value, and the CRLF
                while bytes[lineEnd] != HeadBytes.cr { lineEnd += 1 }
                ignoredLines.append(field.name.lowerBound..<lineEnd + 2)
            }
        }
        guard !connectionOptions.contains("close") else { return nil }
        switch (contentLength, chunked) {
        case (nil, true): return .chunked(ChunkedBodyScanner())
        case (let length?, false): return .length(remaining: length)
        case (nil, false): return .length(remaining: 0)
        case (_?, true): return nil
        }
    }

    /// `buffer`, which starts with the request, without `ignoredLines`.
    func leavingOutIgnoredLines(of buffer: ByteBuffer) -> ByteBuffer {
        var kept = ByteBufferAllocator().buffer(capacity: buffer.readableBytes)
        var start = 0
        for line in ignoredLines + [buffer.readableBytes..<buffer.readableBytes] {
            if let part = buffer.getSlice(at: buffer.readerIndex + start, length: line.lowerBound - start) { kept.writeImmutableBuffer(part) }
            start = line.upperBound
        }
        return kept
    }

    /// How many of the bytes that follow what has been counted belong to the request.
    enum Share: Equatable {
        /// All of these, and the request goes on.
        case part(Int)
        /// This many, the last of them the request's last byte.
        case last(Int)
        /// The chunked body is malformed: NIO's parser will refuse it too.
        case malformed
    }

    /// Counts `bytes` (the next ones to go to the parser) as far as they belong to the request.
    mutating func share(of bytes: UnsafeRawBufferPointer) -> Share {
        let head = min(headRemaining, bytes.count)
        headRemaining -= head
        guard headRemaining == 0 else { return .part(head) }
        switch framing {
        case .length(let remaining):
            let body = min(remaining, bytes.count - head)
            framing = .length(remaining: remaining - body)
            return body == remaining ? .last(head + body) : .part(head + body)
        case .chunked(var scanner):
            let result = scanner.scan(UnsafeRawBufferPointer(rebasing: bytes[head...]))
            framing = .chunked(scanner)
            switch result {
            case .more: return .part(bytes.count)
            case .ends(let after): return .last(head + after)
            case .malformed: return .malformed
            }
        }
    }

    /// What lending a share showed.
    enum Lent: Equatable {
        /// The parser has all of the share, and the request goes on.
        case goesOn
        /// The parser has the whole request, and reported its end at its last byte.
        case read
        /// The parser reported a request's end elsewhere, or the body is malformed: the
        /// connection is the parser's for good.
        case readDifferently
    }

    /// Gives the parser `share` through `lend`, which gives it that many of the bytes (at
    /// least one) and returns how many request ends it reported while reading them; the
    /// request's last byte goes on its own, so that an end reported anywhere else shows.
    mutating func lend(_ share: Share, through lend: (Int) -> Int) -> Lent {
        switch share {
        case .malformed:
            return .readDifferently
        case .part(let count):
            return count == 0 || lend(count) == 0 ? .goesOn : .readDifferently
        case .last(let count):
            if count > 1, lend(count - 1) != 0 { return .readDifferently }
            guard lend(1) == 1 else { return .readDifferently }
            requestRead = true
            return .read
        }
    }
}
