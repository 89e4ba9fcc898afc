import EnvHubCore
import Foundation

/// The `envhub` executable of this build, which `scripts/test.sh` builds before the tests run.
public let envhubBinary: URL = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/envhub")
}()

/// Polls `probe` until it returns a value, failing after `timeout`. (Most callers wait for a
/// condition and want no value: hence discardable.)
@discardableResult
public func waitFor<T>(_ what: String, timeout: Duration = .seconds(30), _ probe: () async throws -> T?) async throws -> T {
    TestProgress.note("waiting for \(what)")
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw TestSetupError("timed out waiting for \(what)")
}

/// A built-in template as shipped, read from the source tree.
public func builtInTemplate(_ name: String) throws -> Template {
    let file = envhubBinary.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/EnvHubServer/Resources/templates/\(name).yaml")
    return try TemplateParser.parse(yaml: String(contentsOf: file, encoding: .utf8), file: file.lastPathComponent)
}

/// Runs `body`, failing with `what` if it has not finished within `limit` (it is cancelled).
public func withTimeout<T: Sendable>(
    _ what: String, _ limit: Duration = .seconds(60), _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() ?? nil else { throw TestSetupError("timed out after \(limit): \(what)") }
        return value
    }
}

/// The Python app the gateway tests run as an environment (see the file for its routes).
public let gatewayTestApp: URL = envhubBinary.deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Tests/Support/gateway-test-app.py")

/// The Python agent that misbehaves on request, for the agent conversation tests (see the file).
public let agentTestApp: URL = gatewayTestApp.deletingLastPathComponent().appendingPathComponent("agent-test-app.py")

/// Runs blocking work on a thread of its own. Blocking a thread of Swift's cooperative pool
/// (two on a two-core machine) would starve the hub that runs in the same test process.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A blocking TCP connection to 127.0.0.1, for tests that must control every byte. Its
/// reads run off Swift's cooperative pool (see `offThePool`).
public final class RawSocket: @unchecked Sendable {  // used by one test at a time, one call at a time
    private var descriptor: Int32
    private var received: [UInt8] = []
    /// The server ended the connection (rather than `receive` giving up on a silent one).
    public private(set) var closedByPeer = false

    /// `receiveBuffer`: the kernel's receive buffer in bytes, to make a slow reader fill up soon.
    public init(port: Int, timeoutSeconds: Int = 10, receiveBuffer: Int32? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw TestSetupError("cannot connect to port \(port)")
        }
    }

    deinit { close() }

    public func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Writes all of `text` (see `sendAll`); what went wrong, if anything, shows in what the
    /// test then reads.
    public func send(_ text: String) {
        _ = sendAll(Array(text.utf8))
    }

    /// Writes `bytes`, blocking while the server reads none; returns how many were written
    /// before the connection ended or the server read nothing for the timeout.
    public func sendAll(_ bytes: [UInt8]) -> (written: Int, error: String?) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return (offset, String(cString: strerror(errno))) }
            offset += sent
        }
        return (offset, nil)
    }

    /// A client's WebSocket text frame (masked, as RFC 6455 requires of clients).
    public func sendWebSocketText(_ text: String) {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        _ = sendAll(frame)
    }

    /// Everything received so far, after reading until `enough` says so or the peer stops.
    public func receive(until enough: @escaping @Sendable (String) -> Bool) async throws -> String {
        try await offThePool { self.receiveBlocking(until: enough) }
    }

    private func receiveBlocking(until enough: (String) -> Bool) -> String {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !enough(String(decoding: received, as: UTF8.self)) {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else {
                closedByPeer = count == 0 || errno == ECONNRESET
                break
            }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// The WebSocket opening handshake, written by hand.
    public func openWebSocket(path: String, protocol subprotocol: String, headers: [String] = []) {
        send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \(subprotocol)\r\n"
            + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }
}

/// Sends `request` as written and returns the answer, up to its Content-Length or until the
/// server closes the connection.
public func rawHTTPExchange(port: Int, _ request: String) async throws -> String {
    let socket = try RawSocket(port: port)
    socket.send(request)
    return try await socket.receive { text in
        guard let end = text.range(of: "\r\n\r\n"),
              let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return false }
        return text[end.upperBound...].utf8.count >= length
    }
}

/// Opens a WebSocket by hand and returns what the server sends until `enough` (by default,
/// until a VNC server's RFB greeting has come through).
public func rawWebSocketOpening(
    port: Int, path: String, protocol subprotocol: String, headers: [String] = [],
    until enough: @escaping @Sendable (String) -> Bool = { $0.contains("RFB ") }
) async throws -> String {
    let socket = try RawSocket(port: port)
    socket.openWebSocket(path: path, protocol: subprotocol, headers: headers)
    return try await socket.receive(until: enough)
}
