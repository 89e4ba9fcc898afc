import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A port on 127.0.0.1 that nothing uses right now, for a component to listen on.
///
/// The port is found by binding it and letting it go, so another program could take it before
/// the component binds it. To make that unlikely, ports come from below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`), where the kernel never hands out ports of
/// its own (not for `bind` to port 0, not for outgoing connections), chosen at random, and a
/// port is not handed out again while it is among the last few hundred given. Only when that
/// range is too small (under 1,000 ports) does the kernel pick one.
public enum FreePort {
    public static func pick() throws -> Int {
        if let range = belowEphemeral {
            for _ in 0..<200 {
                let candidate = Int.random(in: range)
                guard recent.withLock({ !$0.contains(candidate) }), bindable(candidate) != nil else { continue }
                recent.withLock { recent in
                    recent.append(candidate)
                    if recent.count > 512 { recent.removeFirst(recent.count - 512) }
                }
                return candidate
            }
        }
        guard let port = bindable(0) else { throw RuntimeError("cannot find a free port on 127.0.0.1") }
        return port
    }

    /// Ports handed out lately, oldest first.
    private static let recent = Mutex<[Int]>([])

    /// 10000 up to the first ephemeral port, when that leaves at least 1,000 ports.
    private static let belowEphemeral: ClosedRange<Int>? = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        guard let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap({ Int($0) }),
              low - 1 - 10_000 >= 1_000 else { return nil }
        return 10_000...(low - 1)
    }()

    /// Binds 127.0.0.1:`port` (0: any) and lets it go; the port bound, or nil if it was taken.
    private static func bindable(_ port: Int) -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}
