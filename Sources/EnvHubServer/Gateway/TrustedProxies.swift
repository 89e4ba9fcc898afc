import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The proxies in front of the hub whose X-Forwarded-For the gateway passes on to apps
/// (`ENVHUB_TRUSTED_PROXIES`: addresses and CIDR ranges, IPv4 or IPv6). A request from one of
/// them keeps the X-Forwarded-For list it came with, the proxy's address added at its end, as
/// nginx's `$proxy_add_x_forwarded_for` does; behind a load balancer or a Kubernetes ingress
/// the app then sees where the request came from. From anyone else the list is the client's
/// address alone, since a client can write anything into it (what Coder's
/// `--proxy-trusted-origins` and nginx's `set_real_ip_from` decide). None by default: envhub
/// on one machine is the first hop.
public struct TrustedProxies: Sendable, Equatable {
    /// One address range: its first bytes (4 for IPv4, 16 for IPv6) and how many bits count.
    struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            let whole = prefixLength / 8, rest = prefixLength % 8
            guard address[..<whole] == bytes[..<whole] else { return false }
            guard rest > 0 else { return true }
            let mask = UInt8(0xFF) << (8 - rest)
            return address[whole] & mask == bytes[whole] & mask
        }
    }

    let ranges: [Range]

    public static let none = TrustedProxies(ranges: [])

    /// An entry that is neither an IP address nor a CIDR range.
    public struct Invalid: Error, CustomStringConvertible {
        public let entry: String
        public var description: String { "'\(entry)' is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8" }
    }

    private init(ranges: [Range]) { self.ranges = ranges }

    /// Reads `10.0.0.0/8, 192.168.1.7, fd00::/8`: comma-separated addresses and ranges.
    public init(_ text: String) throws {
        let entries = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        ranges = try entries.map { entry in
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.bytes(ofAddress: String(parts[0])) else { throw Invalid(entry: entry) }
            let bits = bytes.count * 8
            guard parts.count == 2 else { return Range(bytes: bytes, prefixLength: bits) }
            guard let length = Int(parts[1]), (0...bits).contains(length) else { throw Invalid(entry: entry) }
            return Range(bytes: bytes, prefixLength: length)
        }
    }

    /// Whether `address` is one of the trusted proxies.
    func contains(_ address: SocketAddress?) -> Bool {
        guard !ranges.isEmpty, let bytes = address.flatMap(Self.bytes(of:)) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The address's bytes; an IPv4 address that arrived mapped into IPv6 (`::ffff:a.b.c.d`,
    /// on a dual-stack listener) as its 4 IPv4 bytes, so that IPv4 ranges match it.
    private static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            let mapped = bytes[..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            return mapped ? Array(bytes[12...]) : bytes
        case .unixDomainSocket:
            return nil
        }
    }

    private static func bytes(ofAddress text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }
}
