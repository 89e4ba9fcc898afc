// bench/gateway's `floor` target: a reference, not a peer and not envhub code. The least a
// keep-alive HTTP/1.1 reverse proxy in Swift costs per small GET when it runs on epoll
// threads of its own (one per core, each with its own SO_REUSEPORT listener) instead of NIO,
// doing the head work envhub's byte path does: find the head's end, strip the prefix, drop
// Authorization and Connection, add X-Forwarded-For/-Proto/-Host/-Prefix, read the answer's
// Content-Length. No authentication, no routing, one app connection per client connection,
// answers with a Content-Length only, and a write the kernel cannot take whole ends the
// connection: enough for `wrk` against `hello`, nothing else.
//
//   floor LISTEN_PORT APP_PORT PREFIX THREADS
import Glibc

let listenPort = UInt16(CommandLine.arguments[1])!
let upstreamPort = UInt16(CommandLine.arguments[2])!
let prefix = Array(CommandLine.arguments[3].utf8)
let threads = Int(CommandLine.arguments[4]) ?? 2

func check(_ r: Int32, _ what: String) -> Int32 {
    if r < 0 { perror(what); exit(1) }
    return r
}

func address(_ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    a.sin_port = port.bigEndian
    return a
}

func setNonBlocking(_ fd: Int32) { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
func setNoDelay(_ fd: Int32) { var one: Int32 = 1; setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4) }

final class Connection {
    let client: Int32
    var upstream: Int32 = -1
    var inbound: [UInt8] = []
    var outbound: [UInt8] = []  // head being built for the app
    var responseRemaining = -1  // -1: head not yet complete
    var responseHead: [UInt8] = []
    var busy = false
    init(client: Int32) { self.client = client }
}

func findHeadEnd(_ b: [UInt8]) -> Int? {
    if b.count < 4 { return nil }
    var i = 0
    while i + 3 < b.count {
        if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
        i += 1
    }
    return nil
}

func lowerEquals(_ b: ArraySlice<UInt8>, _ name: String) -> Bool {
    let n = Array(name.utf8)
    guard b.count >= n.count else { return false }
    var i = b.startIndex
    for c in n {
        var x = b[i]
        if x >= 65 && x <= 90 { x += 32 }
        if x != c { return false }
        i += 1
    }
    return true
}

func worker() {
    let listener = check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
    var one: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, 4)
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    var a = address(listenPort)
    _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { check(bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)), "bind") } }
    _ = check(listen(listener, 1024), "listen")
    setNonBlocking(listener)
    let ep = epoll_create1(0)
    var byFD: [Int32: Connection] = [:]
    func add(_ fd: Int32) {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.fd = fd
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)
    }
    add(listener)
    var events = [epoll_event](repeating: epoll_event(), count: 256)
    var buffer = [UInt8](repeating: 0, count: 65536)
    func close(_ c: Connection) {
        byFD[c.client] = nil
        Glibc.close(c.client)
        if c.upstream >= 0 { byFD[c.upstream] = nil; Glibc.close(c.upstream) }
    }
    func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
    func startRequest(_ c: Connection) {
        guard !c.busy, let end = findHeadEnd(c.inbound) else { return }
        let head = c.inbound[0..<end]
        c.inbound.removeFirst(end)
        // request line: METHOD SP TARGET SP VERSION
        guard let sp1 = head.firstIndex(of: 32), let sp2 = head[(sp1 + 1)...].firstIndex(of: 32),
              let lineEnd = head.firstIndex(of: 13) else { return close(c) }
        var target = head[(sp1 + 1)..<sp2]
        if target.starts(with: prefix) { target = target.dropFirst(prefix.count) }
        var out = c.outbound
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: head[..<(sp1 + 1)])
        if target.isEmpty { out.append(47) } else { out.append(contentsOf: target) }
        out.append(contentsOf: head[sp2..<lineEnd])
        out.append(contentsOf: [13, 10])
        var i = lineEnd + 2
        var host: ArraySlice<UInt8> = []
        while i < end - 2 {
            let e = head[i...].firstIndex(of: 13)!
            let line = head[i..<e]
            if lowerEquals(line, "authorization:") || lowerEquals(line, "connection:") {
            } else {
                if lowerEquals(line, "host:") { host = line.dropFirst(5) }
                out.append(contentsOf: line)
                out.append(contentsOf: [13, 10])
            }
            i = e + 2
        }
        out.append(contentsOf: "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host:".utf8)
        out.append(contentsOf: host)
        out.append(contentsOf: "\r\nX-Forwarded-Prefix: ".utf8)
        out.append(contentsOf: prefix)
        out.append(contentsOf: "\r\n\r\n".utf8)
        c.outbound = out
        if c.upstream < 0 {
            let u = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var ua = address(upstreamPort)
            let r = withUnsafePointer(to: &ua) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(u, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r != 0 { Glibc.close(u); return close(c) }
            setNonBlocking(u); setNoDelay(u)
            c.upstream = u
            byFD[u] = c
            add(u)
        }
        c.busy = true
        c.responseRemaining = -1
        c.responseHead.removeAll(keepingCapacity: true)
        if !sendAll(c.upstream, out) { close(c) }
    }
    while true {
        let n = epoll_wait(ep, &events, Int32(events.count), -1)
        if n < 0 { continue }
        for k in 0..<Int(n) {
            let fd = events[k].data.fd
            if fd == listener {
                while true {
                    let cfd = accept(listener, nil, nil)
                    if cfd < 0 { break }
                    setNonBlocking(cfd); setNoDelay(cfd)
                    byFD[cfd] = Connection(client: cfd)
                    add(cfd)
                }
                continue
            }
            guard let c = byFD[fd] else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                if count < 0 && errno == EAGAIN { continue }
                close(c); continue
            }
            if fd == c.client {
                c.inbound.append(contentsOf: buffer[0..<count])
                startRequest(c)
            } else {
                var body = 0..<count
                if c.responseRemaining < 0 {
                    c.responseHead.append(contentsOf: buffer[0..<count])
                    guard let end = findHeadEnd(c.responseHead) else { continue }
                    var length = 0
                    var i = c.responseHead.firstIndex(of: 10)! + 1
                    while i < end - 2 {
                        let e = c.responseHead[i...].firstIndex(of: 13)!
                        let line = c.responseHead[i..<e]
                        if lowerEquals(line, "content-length:") {
                            var v = 0
                            for x in line.dropFirst(15) where x >= 48 && x <= 57 { v = v * 10 + Int(x - 48) }
                            length = v
                        }
                        i = e + 2
                    }
                    let headPart = Array(c.responseHead[0..<end])
                    let extra = c.responseHead.count - end
                    body = (count - extra)..<count
                    c.responseRemaining = length
                    if !sendAll(c.client, headPart) { close(c); continue }
                }
                if !body.isEmpty {
                    let slice = Array(buffer[body])
                    c.responseRemaining -= slice.count
                    if !sendAll(c.client, slice) { close(c); continue }
                }
                if c.responseRemaining == 0 {
                    c.busy = false
                    startRequest(c)
                }
            }
        }
    }
}

var workers: [pthread_t] = []
for _ in 0..<threads {
    var t = pthread_t()
    pthread_create(&t, nil, { _ in worker(); return nil }, nil)
    workers.append(t)
}
for t in workers { pthread_join(t, nil) }
