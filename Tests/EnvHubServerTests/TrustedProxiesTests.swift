import EnvHubTestSupport
import Foundation
import NIOCore
import Testing

@testable import EnvHubServer

/// Which clients the gateway takes for proxies in front of the hub (`ENVHUB_TRUSTED_PROXIES`),
/// and what their apps are then told of where requests came from.
@Suite struct TrustedProxiesTests {
    static func address(_ ip: String) throws -> SocketAddress { try SocketAddress(ipAddress: ip, port: 4000) }

    @Test func addressesAndRangesOfBothFamiliesMatchWhatTheyCover() throws {
        let trusted = try TrustedProxies(" 10.0.0.0/8, 192.168.1.7 ,172.16.0.0/12, fd00::/8, 2001:db8::1 ")
        for ip in ["10.0.0.1", "10.255.255.255", "192.168.1.7", "172.31.9.9", "fd12:3456::1", "2001:db8::1", "::ffff:10.1.2.3"] {
            #expect(trusted.contains(try Self.address(ip)), "\(ip)")
        }
        for ip in ["11.0.0.1", "192.168.1.8", "172.32.0.1", "fe80::1", "2001:db8::2", "127.0.0.1", "::ffff:11.1.2.3"] {
            #expect(!trusted.contains(try Self.address(ip)), "\(ip)")
        }
        #expect(!trusted.contains(nil))
        #expect(try TrustedProxies("0.0.0.0/0").contains(try Self.address("203.0.113.7")))
        #expect(try TrustedProxies("10.0.0.0/9").contains(try Self.address("10.127.0.1")))
        #expect(!(try TrustedProxies("10.0.0.0/9").contains(try Self.address("10.128.0.1"))))
        #expect(!TrustedProxies.none.contains(try Self.address("127.0.0.1")))
        #expect(try TrustedProxies("") == .none)
    }

    @Test(arguments: ["ingress", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0/8", "10.0.0.1/x", "1.2.3.4.5"])
    func anythingElseIsRefusedByName(_ entry: String) {
        #expect(throws: TrustedProxies.Invalid.self) { try TrustedProxies("10.0.0.1, \(entry)") }
    }

    /// Who sent a request: the peer unless it is a trusted proxy; then X-Forwarded-For read
    /// from its end, past trusted proxies, to the first address that is not one.
    @Test func theClientIsTheLastAddressNoTrustedProxyAddedItself() throws {
        let proxies = try TrustedProxies("10.0.0.0/8")
        let proxy = try Self.address("10.0.0.5"), stranger = try Self.address("203.0.113.7")
        #expect(proxies.clientAddress(peer: stranger, forwardedFor: ["198.51.100.2"]) == "203.0.113.7")
        #expect(proxies.clientAddress(peer: proxy, forwardedFor: []) == "10.0.0.5")
        #expect(proxies.clientAddress(peer: proxy, forwardedFor: ["192.0.2.1, 198.51.100.2"]) == "198.51.100.2")
        #expect(proxies.clientAddress(peer: proxy, forwardedFor: ["192.0.2.1", "198.51.100.2 , 10.0.0.9"]) == "198.51.100.2")
        #expect(proxies.clientAddress(peer: proxy, forwardedFor: ["10.0.0.7, 10.0.0.9"]) == "10.0.0.7")
        #expect(proxies.clientAddress(peer: proxy, forwardedFor: ["garbage"]) == "garbage")
        #expect(proxies.clientAddress(peer: nil, forwardedFor: ["198.51.100.2"]) == nil)
    }

    /// From a trusted proxy the app gets the X-Forwarded-For list the request came with, the
    /// proxy's address added, and the scheme and host the proxy names, on both gateway paths;
    /// from anyone else, the client's address alone, http and the Host field.
    @Test(arguments: [GatewayConnectionTests.Opening.none, .parserForGood], [true, false])
    func theAppSeesTheChainOnlyThroughATrustedProxy(after opening: GatewayConnectionTests.Opening, trusted: Bool) async throws {
        try await GatewayTests.withActiveProject("probe", configure: {
            $0.trustedProxies = try! TrustedProxies(trusted ? "127.0.0.0/8" : "10.0.0.0/8")
        }) { _, token, port in
            let socket = try RawSocket(port: port)
            socket.send(opening.text + "GET /u/admin/web/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\n"
                + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: hub.example\r\n\r\n")
            let text = try await socket.receive { GatewayConnectionTests.bodies($0).count == (opening == .none ? 1 : 2) }
            let expected = trusted
                ? ["203.0.113.7, 198.51.100.2, 127.0.0.1", "https", "hub.example"] : ["127.0.0.1", "http", "127.0.0.1"]
            #expect(text.contains(#""x-forwarded-for": "\#(expected[0])""#), "\(text)")
            #expect(text.contains(#""x-forwarded-proto": "\#(expected[1])""#), "\(text)")
            #expect(text.contains(#""x-forwarded-host": "\#(expected[2])""#), "\(text)")
        }
    }
}
