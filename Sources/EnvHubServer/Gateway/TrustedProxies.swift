import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The proxies in front of the hub whose X-Forwarded fields the hub believes
/// (`ENVHUB_TRUSTED_PROXIES`: addresses and CIDR ranges, IPv4 or IPv6). A gateway request from
/// one of them keeps the X-Forwarded-For list it came with, the proxy's address added at its
/// end, as nginx's `$proxy_add_x_forwarded_for` does, and its X-Forwarded-Proto and -Host go
/// on to the app (`ForwardedClaims`); behind a load balancer or a Kubernetes ingress that
/// terminates TLS, the app then sees where the request came from and that it came over https,
/// and the session cookie is Secure; sign-in throttling counts the client a trusted proxy
/// names (`clientAddress`). From anyone else the app is told the client's address alone, http
/// and the Host field, since a client can write anything into those fields (what Coder's
/// `--proxy-trusted-origins` and nginx's `set_real_ip_from` decide). None by default: envhub
/// on one machine is the first hop.
public struct TrustedProxies: Sendable, Equatable {
    /// One address range, every address as 128 bits: IPv6 as it is, IPv4 mapped into IPv6
    /// (`::ffff:a.b.c.d`, as a dual-stack listener reports it), so one comparison serves both
    /// and asking costs no allocation (it is asked for every gateway request).
    struct Range: Sendable, Equatable {
        let network: UInt128
        let mask: UInt128

        init(_ address: UInt128, prefixLength: Int) {
            mask = prefixLength == 0 ? 0 : ~UInt128(0) << (128 - prefixLength)
            network = address & mask
        }

        func contains(_ address: UInt128) -> Bool { address & mask == network }
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
            guard let (address, bits) = Self.address(String(parts[0])) else { throw Invalid(entry: entry) }
            guard parts.count == 2 else { return Range(address, prefixLength: 128) }
            guard let length = Int(parts[1]), (0...bits).contains(length) else { throw Invalid(entry: entry) }
            return Range(address, prefixLength: 128 - bits + length)
        }
    }

    /// Whether `address` is one of the trusted proxies.
    func contains(_ address: SocketAddress?) -> Bool {
        guard !ranges.isEmpty, let address = address.flatMap(Self.address(of:)) else { return false }
        return ranges.contains { $0.contains(address) }
    }

    /// Whether the address written as `text` (`10.1.2.3`, `fd00::1`) is one of the trusted proxies.
    func contains(ipAddress text: String) -> Bool {
        guard !ranges.isEmpty, let (address, _) = Self.address(text) else { return false }
        return ranges.contains { $0.contains(address) }
    }

    /// The address of whoever sent a request that came from `peer`: the peer itself unless it
    /// is a trusted proxy; then the X-Forwarded-For list (`forwardedFor`, its fields' values in
    /// order) is read from its end, past the trusted proxies in it, to the first address that
    /// is not one (what nginx's `real_ip_recursive` reads). Nil for a peer without an address.
    func clientAddress(peer: SocketAddress?, forwardedFor: [String]) -> String? {
        guard contains(peer) else { return peer?.ipAddress }
        var client = peer?.ipAddress
        ForwardedClaims.fromTheEnd(of: forwardedFor) { address in
            client = String(address)
            return contains(ipAddress: String(address))
        }
        return client
    }

    private static func address(of socketAddress: SocketAddress) -> UInt128? {
        switch socketAddress {
        case .v4(let v4): return mapped(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { number($0) }
        case .unixDomainSocket: return nil
        }
    }

    /// The address `text` names, and how many bits it has as written (32 or 128).
    private static func address(_ text: String) -> (UInt128, Int)? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return (mapped(UInt32(bigEndian: v4.s_addr)), 32) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return (withUnsafeBytes(of: v6) { number($0) }, 128) }
        return nil
    }

    private static func mapped(_ v4: UInt32) -> UInt128 { UInt128(0xFFFF) << 32 | UInt128(v4) }

    /// Network-order bytes as a number.
    private static func number(_ bytes: UnsafeRawBufferPointer) -> UInt128 {
        bytes.reduce(0) { $0 << 8 | UInt128($1) }
    }
}
