import EnvHubRuntime
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EnvHubServer

/// The byte path's own readings of HTTP/1.1 against NIO's parser (llhttp, strict), on many
/// generated messages, most of them a little wrong in the ways request smuggling and response
/// splitting use. Wherever the byte path frames a message, NIO must find the same message
/// ending at the same byte:
///
/// - a plain gateway request (`PlainGatewayRequest`), as the client sent it and as the app is
///   sent it: otherwise a proxy in front of the hub, or the app, would read another request
///   than the gateway did;
/// - a request lent to NIO's parser (`ParserTurn`): a difference there costs only speed (the
///   connection stays with the parser), but it shows a reading gone wrong;
/// - an app's response as the client is sent it (`ByteExchange`, which reads it with
///   `UpstreamResponseHead` and `ChunkedBodyScanner`):
///   otherwise an app could end its answer early in the client's eyes and write the answer to
///   the client's next request, say for the hub's own page.
///
/// The messages come from a fixed seed, so a failure comes back on every run; the failure names
/// the message. `ENVHUB_DIFFERENTIAL_CASES` runs more of them (the default is 20,000 of each kind),
/// from `ENVHUB_DIFFERENTIAL_SEED` when set.
@Suite struct BytePathAgreesWithNIOTests {
    static let cases = ProcessInfo.processInfo.environment["ENVHUB_DIFFERENTIAL_CASES"].flatMap(Int.init) ?? 20000
    static let seed = ProcessInfo.processInfo.environment["ENVHUB_DIFFERENTIAL_SEED"].flatMap(UInt64.init) ?? 0x656E_7668_7562

    @Test func requestsTheBytePathReadsAreReadAlikeByNIO() async {
        let (disagreements, plain, lent) = await Self.onAThreadOfItsOwn { Self.readRequests() }
        disagreements.report()
        // The generator must reach both readings often, or the test proves little.
        #expect(plain > Self.cases / 10 && lent > Self.cases / 20, "plain \(plain), lent \(lent) of \(Self.cases)")
    }

    @Test func answersTheBytePathFramesEndWhereNIOEndsThem() async {
        let (disagreements, ended) = await Self.onAThreadOfItsOwn { Self.readAnswers() }
        disagreements.report()
        #expect(ended > Self.cases / 5, "ended \(ended) of \(Self.cases)")
    }

    /// Runs `work` on a thread of its own: the messages take seconds of CPU, which on the test
    /// run's cooperative threads (two here) would stall every other test meanwhile.
    static func onAThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    /// Generated requests: the disagreements, and how many were plain and lent.
    static func readRequests() -> (Disagreements, plain: Int, lent: Int) {
        var maker = MessageMaker(seed: Self.seed)
        var disagreements = Disagreements()
        var plain = 0, lent = 0
        for _ in 0..<Self.cases {
            let message = maker.request()
            switch PlainGatewayRequest.scan(ByteBuffer(bytes: message)) {
            case .plain(let request):
                plain += 1
                disagreements.note(message, Self.disagreement(plain: request, in: message))
            case .other:
                guard case .turn(var turn) = ParserTurn.scan(ByteBuffer(bytes: message)) else { continue }
                let kept = Array(buffer: turn.leavingOutIgnoredLines(of: ByteBuffer(bytes: message)))
                guard case .last(let length) = kept.withUnsafeBytes({ turn.share(of: $0) }) else { continue }
                lent += 1
                // NIO may refuse a request lent to it: it is the one reading it, and answers 400.
                disagreements.note(message, Self.disagreement(endingAt: length, of: kept, reading: .request(), unlessRefused: true))
            case .incomplete:
                continue
            }
        }
        return (disagreements, plain, lent)
    }

    /// Generated answers, each relayed by a `ByteExchange` as the byte path relays an app's
    /// bytes: the disagreements, and how many it ended (the others it refused, or reads until
    /// the app closes).
    static func readAnswers() -> (Disagreements, ended: Int) {
        var maker = MessageMaker(seed: Self.seed ^ 0xA5A5)
        var disagreements = Disagreements()
        var ended = 0
        let activity = ActivityTracker().common
        for _ in 0..<Self.cases {
            let message = maker.response()
            let headRequest = maker.coin() && maker.coin() && maker.coin()
            let exchange = ByteExchange(
                target: GatewayBytePathTests.target, head: ByteBuffer(), bodyLength: 0, method: headRequest ? .head : .get,
                activity: activity)
            var client: [UInt8] = []
            guard case .ended = exchange.relay(ByteBuffer(bytes: message), closeClient: false, write: { client += Array(buffer: $0) }),
                  let status = exchange.response?.status
            else { continue }
            ended += 1
            let reading = NIOReading.response(to: headRequest ? .HEAD : .GET)
            disagreements.note(message, Self.disagreement(endingAt: client.count, of: client, reading: reading, status: status))
        }
        return (disagreements, ended)
    }

    /// What NIO reads differently in a plain request: as it came, and as the app is sent it.
    static func disagreement(plain request: PlainGatewayRequest, in message: [UInt8]) -> String? {
        let end = request.headLength + (request.contentLength ?? 0)
        guard end <= message.count else { return nil }  // the body was cut short: nothing to compare
        let asSent = NIOReading.request()
        if let difference = disagreement(endingAt: end, of: message, reading: asSent) { return "as sent: " + difference }
        guard let head = asSent.heads.first else { return "as sent: no head" }
        if head.method.rawValue != request.request.method.rawValue || head.uri != request.request.target {
            return "as sent: NIO read \(head.method.rawValue) \(head.uri)"
        }
        // NIO keeps the white space after a value, which RFC 9110 leaves out of it (as the byte path does).
        if head.headers["host"].map({ $0.trimmingCharacters(in: .whitespaces) }) != [request.request.host] {
            return "as sent: NIO read Host \(head.headers["host"])"
        }
        if asSent.bodyBytes != (request.contentLength ?? 0) { return "as sent: NIO read a body of \(asSent.bodyBytes) bytes" }

        let forwarded = Array(buffer: request.forwardedHead(for: GatewayBytePathTests.target, clientIP: "10.1.2.3"))
            + message[request.headLength..<end]
        let toApp = NIOReading.request()
        if let difference = disagreement(endingAt: forwarded.count, of: forwarded, reading: toApp) {
            return "to the app: " + difference + " in " + String(decoding: forwarded, as: UTF8.self).debugDescription
        }
        guard let appHead = toApp.heads.first else { return "to the app: no head" }
        if appHead.headers["transfer-encoding"] != [] || appHead.headers["content-length"].count > 1 || appHead.headers["host"].count != 1 {
            return "to the app: framing fields \(appHead.headers)"
        }
        return nil
    }

    /// Whether NIO, given `bytes` in two writes (all but the last byte of the message that ends
    /// at `end`, then that byte), reads one message that ends exactly there; for an answer,
    /// with `status` (after any informational ones). `unlessRefused`: NIO refusing the message
    /// is no disagreement.
    static func disagreement(
        endingAt end: Int, of bytes: [UInt8], reading: NIOReading, status: Int? = nil, unlessRefused: Bool = false
    ) -> String? {
        do {
            if end > 1 {
                try reading.write(bytes[..<(end - 1)])
                if reading.ends > 0 { return "NIO ended the message before its last byte" }
            }
            try reading.write(bytes[(end - 1)..<end])
        } catch {
            return unlessRefused ? nil : "NIO refused it: \(error)"
        }
        guard reading.ends == 1 else { return "NIO did not end the message at its last byte" }
        if let status, reading.statuses.last != status || reading.statuses.dropLast().contains(where: { $0 >= 200 }) {
            return "NIO read statuses \(reading.statuses), not \(status)"
        }
        return nil
    }
}

/// Up to ten disagreements, each with the message that showed it, reported at the end.
struct Disagreements: Sendable {
    private(set) var found: [(message: [UInt8], what: String)] = []
    private var count = 0

    mutating func note(_ message: [UInt8], _ disagreement: String?) {
        guard let disagreement else { return }
        count += 1
        if found.count < 10 { found.append((message, disagreement)) }
    }

    func report() {
        for (message, what) in found {
            Issue.record("\(what)\n    message: \(String(decoding: message.prefix(600), as: UTF8.self).debugDescription)")
        }
        if count > found.count { Issue.record("\(count - found.count) disagreements more") }
    }
}

/// NIO's HTTP/1 decoder on an `EmbeddedChannel`: what it has read so far.
final class NIOReading {
    private let channel: EmbeddedChannel
    private let readsRequests: Bool
    private(set) var heads: [HTTPRequestHead] = []
    private(set) var statuses: [Int] = []
    private(set) var ends = 0
    private(set) var bodyBytes = 0

    private init(_ channel: EmbeddedChannel, readsRequests: Bool) {
        self.channel = channel
        self.readsRequests = readsRequests
    }

    static func request() -> NIOReading {
        NIOReading(EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))), readsRequests: true)
    }

    /// Reads responses as a client that sent one request with `method` (a HEAD's answer has no body).
    static func response(to method: HTTPMethod) -> NIOReading {
        let channel = EmbeddedChannel()
        try! channel.pipeline.syncOperations.addHandlers([
            HTTPRequestEncoder(), ByteToMessageHandler(HTTPResponseDecoder(informationalResponseStrategy: .forward)),
        ])
        try! channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        try! channel.writeOutbound(HTTPClientRequestPart.end(nil))
        while try! channel.readOutbound(as: ByteBuffer.self) != nil {}
        return NIOReading(channel, readsRequests: false)
    }

    func write(_ bytes: ArraySlice<UInt8>) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        while readsRequests, let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head): heads.append(head)
            case .body(let body): bodyBytes += body.readableBytes
            case .end: ends += 1
            }
        }
        while !readsRequests, let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let head): statuses.append(Int(head.status.code))
            case .body(let body): bodyBytes += body.readableBytes
            case .end: ends += 1
            }
        }
    }
}

/// Deterministic pseudo-random numbers (SplitMix64), so generated cases repeat run to run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Messages near the grammar's edges: half of them well formed, the others with one or two of
/// the shapes that parsers are known to read differently (framing fields repeated or padded, bare
/// CR or LF, obs-fold, control bytes, odd versions, chunk sizes and extensions).
struct MessageMaker {
    private var random: SplitMix64
    /// The message may be askew: each choice then takes an odd value one time in sixteen
    /// (so one or two of them in most such messages, anywhere in the message alike).
    private var odd = false

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func coin() -> Bool { random.next() % 2 == 0 }

    mutating func request() -> [UInt8] {
        odd = coin()
        var text = oneOf(["GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"], odd: ["CONNECT", "PURGE", "G(T", "", "get", "FETCH"])
        text += oneOf([" "], odd: ["  ", "\t", ""])
        text += oneOf(["/u/alice/web/", "/u/alice/web/api?x=1&y=%20", "/u/a/b", "/api/users"],
                      odd: ["/u/", "*", "http://h/u/a/b", "/u/a/b/c\u{7F}", "/u/a/b\u{E9}"])
        text += oneOf([" "], odd: ["  ", "\t", ""])
        text += oneOf(["HTTP/1.1"], odd: ["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.10", "HTTP/1.1 "])
        text += lineEnd()
        var fields: [(String, String)] = []
        if !rarely() { fields.append(("Host", oneOf(["hub.example", "hub.example:8080", "alice.apps.example"], odd: [""]))) }
        var lengths: [Int] = []
        var chunked = false
        for _ in 0..<(random.next() % 6) {
            let field: (String, String)
            switch random.next() % 12 {
            case 0, 1:
                let value = oneOf(["0", "5", "12"], odd: ["05", "+5", "-1", "5,5", "5, 5", "0x5", "5.0", "99999999999999999999", "", "1 2", "5\t", "5 "])
                field = ("Content-Length", value)
                if let length = Int(value), length >= 0 { lengths.append(length) }
            case 2:
                let value = oneOf(["chunked"], odd: ["Chunked", "gzip, chunked", "chunked, gzip", "identity", "xchunked", "chunked,", "chunked;q=1", "chunked\t"])
                field = ("Transfer-Encoding", value)
                chunked = chunked || value.lowercased().contains("chunked")
            case 3: field = ("Connection", oneOf(["keep-alive", "close", "Upgrade"], odd: ["Close", "keep-alive, close", "Upgrade, HTTP2-Settings"]))
            case 4 where rarely(): field = ("Upgrade", oneOf(["websocket", "h2c"], odd: ["h2c, websocket", "tls/1.2"]))
            case 5 where rarely(): field = ("Expect", "100-continue")
            case 6: field = (oneOf(["Cookie", "Authorization", "Accept", "Origin", "Sec-Fetch-Site"]), oneOf(["a=1; b=2", "Bearer x", "text/html", "same-origin"]))
            case 7: field = (oneOf(["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix"]), oneOf(["10.0.0.1", "https", "h", "/p"]))
            case 8 where rarely(): field = ("Host", oneOf(["hub.example", "other"]))
            default: field = ("X-" + oneOf(["A", "Thing", "Long-Name"]), oneOf(["1", "two words", "caf\u{E9}", "\"quoted\""]))
            }
            fields.append(field)
        }
        fields.shuffle(using: &random)
        for (name, value) in fields {
            text += fieldName(name) + ":" + oneOf([" "], odd: ["", "  ", "\t"]) + fieldValue(value) + lineEnd()
        }
        text += oneOf(["\r\n"], odd: ["\n"])
        var bytes = Array(text.utf8)
        if chunked { bytes += chunkedBody() }
        bytes += Array(repeating: UInt8(ascii: "b"), count: min(lengths.max() ?? 0, 4096))
        bytes += Array("GET /u/alice/web/next HTTP/1.1\r\nHost: hub.example\r\n\r\n".utf8)
        return bytes
    }

    mutating func response() -> [UInt8] {
        odd = coin()
        var text = oneOf(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"], odd: ["HTTP/1.2", "http/1.1", "HTTP/2"]) + " "
        text += oneOf(["200", "200", "201", "204", "304", "404", "100", "103"], odd: ["101", "099", "2000", "20"])
        text += oneOf([" OK", " "], odd: ["", " Tr\u{E8}s bien", " O\u{01}K", "  OK"]) + lineEnd()
        var length: Int?
        var chunked = false
        var fields: [(String, String)] = []
        for _ in 0..<(random.next() % 5) {
            switch random.next() % 8 {
            case 0, 1:
                let value = oneOf(["0", "5", "12"], odd: ["05", "+5", "5,5", "5, 5", "0x5", "", "99999999999999999999", "5\t", "5 "])
                fields.append(("Content-Length", value))
                if let value = Int(value), value >= 0 { length = max(length ?? 0, value) }
            case 2, 3:
                let value = oneOf(["chunked", "gzip, chunked"], odd: ["Chunked", "chunked, gzip", "identity", "xchunked", "chunked,", "chunked\t", "chunked "])
                fields.append(("Transfer-Encoding", value))
                chunked = chunked || value.lowercased().contains("chunked")
            case 4: fields.append(("Connection", oneOf(["keep-alive", "close", "X-Private"])))
            case 5: fields.append(("Location", oneOf(["/next", "http://127.0.0.1:9000/x", "https://elsewhere/"])))
            case 6: fields.append(("Set-Cookie", oneOf(["a=1; Path=/", "envhub_session=x", "b=2"])))
            default: fields.append(("X-Kept", oneOf(["yes", "caf\u{E9}"], odd: ["a\u{7F}b"])))
            }
        }
        for (name, value) in fields {
            text += fieldName(name) + ":" + oneOf([" "], odd: ["", "\t"]) + fieldValue(value) + lineEnd()
        }
        text += oneOf(["\r\n"], odd: ["\n"])
        var bytes = Array(text.utf8)
        if chunked { bytes += chunkedBody() }
        bytes += Array(repeating: UInt8(ascii: "b"), count: min(length ?? 0, 4096))
        bytes += Array("HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n".utf8)
        return bytes
    }

    /// A chunked body, its size lines, extensions, data ends and trailers sometimes askew.
    private mutating func chunkedBody() -> [UInt8] {
        var text = ""
        for _ in 0..<(random.next() % 3) {
            let size = Int(random.next() % 20) + 1
            text += oneOf([String(size, radix: 16), String(size, radix: 16, uppercase: true)],
                          odd: ["00" + String(size, radix: 16), String(size + 1, radix: 16)])
            text += chunkExtension() + lineEnd()
            text += String(repeating: "c", count: size) + oneOf(["\r\n"], odd: ["", "\n", "x\r\n"])
        }
        text += oneOf(["0"], odd: ["00", "000000000000000000"]) + chunkExtension() + lineEnd()
        if random.next() % 3 == 0 { text += fieldName(oneOf(["X-Trailer"], odd: ["Content-Length", "Transfer-Encoding"])) + ": " + fieldValue("done") + lineEnd() }
        text += oneOf(["\r\n"], odd: ["\n"])
        return Array(text.utf8)
    }

    private mutating func chunkExtension() -> String {
        rarely() ? oneOf([";a", ";a=b", ";a=\"x y\""], odd: ["; a=b", " ;a=b", " junk", "\t;a", " ", ";a=\u{01}", ";a\u{7F}"]) : ""
    }

    private mutating func lineEnd() -> String { oneOf(["\r\n"], odd: ["\n", "\r", "\r\r\n", "\n\r"]) }

    private mutating func fieldName(_ name: String) -> String {
        oneOf([name], odd: [name + " ", name.replacingOccurrences(of: "-", with: "_"), " " + name, name + "\t", "", name + "\u{E9}"])
    }

    private mutating func fieldValue(_ value: String) -> String {
        let inserted = oneOf([""], odd: ["\r", "\n", "\u{0}", "\u{7F}", "\u{80}", "\u{FF}", "\t", "\r\n ", "\r\n\t", " "])
        let at = value.index(value.startIndex, offsetBy: Int(random.next() % UInt64(value.count + 1)))
        return String(value[..<at]) + inserted + String(value[at...])
    }

    /// One of `usual`, or, now and then in an askew message, one of `odd`.
    private mutating func oneOf<T>(_ usual: [T], odd oddValues: [T] = []) -> T {
        let pool = !oddValues.isEmpty && odd && random.next() % 16 == 0 ? oddValues : usual
        return pool[Int(random.next() % UInt64(pool.count))]
    }

    /// True one time in ten.
    private mutating func rarely() -> Bool { random.next() % 10 == 0 }
}
