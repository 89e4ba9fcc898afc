import HTTPTypes

/// The header rules of the gateway (RFC 9110 §7.6.1 for hop-by-hop fields): what the app
/// is sent, and how its answers are adjusted to live under `/u/{user}/{project}`.
enum ForwardedHeaders {
    /// Fields that describe one connection, never forwarded, plus those `Connection` names.
    /// A list, not a set: comparing a few names costs less than hashing one, for every field
    /// of every request.
    static let hopByHop = [
        "connection", "proxy-connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Whether the name `name` (the bytes of a head, any case) is one of `hopByHop`: by its
    /// length first, then as bytes (for every field of every request on the byte path, with no
    /// `String` to make or hold).
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        func `is`(_ lowercased: StaticString) -> Bool { HeadBytes.equals(name, 0..<name.count, lowercased) }
        switch name.count {
        case 2: return `is`("te")
        case 7: return `is`("trailer") || `is`("upgrade")
        case 10: return `is`("connection") || `is`("keep-alive")
        case 16: return `is`("proxy-connection")
        case 17: return `is`("transfer-encoding")
        case 18: return `is`("proxy-authenticate")
        case 19: return `is`("proxy-authorization")
        default: return false
        }
    }

    /// What the app receives: the client's fields without hop-by-hop ones, the hub's
    /// credentials (Authorization and the session cookie) removed, and X-Forwarded-For,
    /// -Proto, -Host and -Prefix set (`forwardedFields`; the client's own X-Forwarded fields
    /// count only when it is a trusted proxy, `fromTrustedProxy`). `keepUpgrade` keeps
    /// Connection/Upgrade for WebSocket handshakes, which the tunnel forwards. (The byte path
    /// applies the same rules to the bytes of a head: `PlainGatewayRequest.forwardedHead`.)
    static func request(
        _ fields: HTTPFields, host: String?, clientAddress: String?, fromTrustedProxy: Bool, prefix: String,
        keepUpgrade: Bool = false
    ) -> HTTPFields {
        let named = connectionOptions(fields)
        var result = HTTPFields()
        var cookies: [Substring] = []
        for field in fields {
            switch fate(ofRequestField: field.name.canonicalName, connectionOptions: named, keepUpgrade: keepUpgrade) {
            case .forward: result.append(field)
            case .drop: continue
            case .cookie: cookies += appCookies(field.value)
            }
        }
        // One Cookie field, as HTTP/1.1 wants (HTTP/2 clients may send several).
        if !cookies.isEmpty { result.append(.init(name: .cookie, value: cookies.joined(separator: "; "))) }
        forwardedFields(
            clientAddress: clientAddress, claims: ForwardedClaims(fields), fromTrustedProxy: fromTrustedProxy,
            host: host, prefix: prefix
        ) { name, value in result[name] = value }
        return result
    }

    /// What becomes of one of the client's fields on its way to the app.
    enum RequestFieldFate {
        case forward
        case drop
        /// Its cookies go on in one Cookie field, all but the hub's session cookie.
        case cookie
    }

    /// `connectionOptions` as `addConnectionOptions` collects them from the Connection fields.
    static func fate(ofRequestField name: String, connectionOptions: Set<String>, keepUpgrade: Bool) -> RequestFieldFate {
        var name = name
        return name.withUTF8 {
            fate(ofRequestField: UnsafeRawBufferPointer($0), connectionOptions: connectionOptions, keepUpgrade: keepUpgrade)
        }
    }

    /// The client's own X-Forwarded fields are dropped (`forwardedFields` sets them), and so
    /// is RFC 7239's `Forwarded`, which would carry its claims past `ForwardedClaims` unchecked
    /// (as Go's ReverseProxy drops it); apps are told the same in the X-Forwarded fields.
    ///
    /// The same for a name as the bytes of a head (any case). Names are compared as bytes: a
    /// browser's request has a dozen fields, and making each name a lower-cased `String` first
    /// cost more than the rest of the head's rewriting.
    static func fate(ofRequestField name: UnsafeRawBufferPointer, connectionOptions: Set<String>, keepUpgrade: Bool) -> RequestFieldFate {
        let whole = 0..<name.count
        func `is`(_ lowercased: StaticString) -> Bool { HeadBytes.equals(name, whole, lowercased) }
        let forwardedPrefix: StaticString = "x-forwarded-"
        if `is`("authorization") || `is`("forwarded")
            || (name.count >= forwardedPrefix.utf8CodeUnitCount
                && HeadBytes.equals(name, 0..<forwardedPrefix.utf8CodeUnitCount, forwardedPrefix)) {
            return .drop
        }
        if isHopByHop(name) || connectionOptions.contains(where: { HeadBytes.equals(name, whole, $0) }) {
            return keepUpgrade && (`is`("connection") || `is`("upgrade")) ? .forward : .drop
        }
        return `is`("cookie") ? .cookie : .forward
    }

    /// The cookies of a Cookie field but the hub's session cookie (either name), as `CookieField` reads them.
    static func appCookies(_ value: String) -> [Substring] {
        var cookies: [Substring] = []
        CookieField.forEachPair(in: value) { pair in
            if !AuthenticationMiddleware.isSessionCookie(pair.name) { cookies.append(pair.text) }
            return true
        }
        return cookies
    }

    /// The fields that tell the app about the client, handed to `add` in order:
    /// - X-Forwarded-For: the client's address, after a trusted proxy's list;
    /// - X-Forwarded-Proto: https if a trusted proxy says so, else http (the hub does not
    ///   terminate TLS);
    /// - X-Forwarded-Host: the host a trusted proxy names, else the client's Host field (`host`);
    /// - X-Forwarded-Prefix.
    /// `claims` are what the client's own X-Forwarded fields say; they count only when it is a
    /// trusted proxy (`fromTrustedProxy`).
    /// (Handed over, not returned: an array of them would be allocated for every request.)
    static func forwardedFields(
        clientAddress: String?, claims: ForwardedClaims, fromTrustedProxy trusted: Bool, host: String?, prefix: String,
        _ add: (HTTPField.Name, String) -> Void
    ) {
        if let clientAddress {
            add(.xForwardedFor, trusted && !claims.forwardedFor.isEmpty
                ? (claims.forwardedFor + [clientAddress]).joined(separator: ", ") : clientAddress)
        }
        add(.xForwardedProto, trusted && claims.https ? "https" : "http")
        if let host = (trusted ? claims.originalHost : nil) ?? host { add(.xForwardedHost, host) }
        add(.xForwardedPrefix, prefix)
    }

    /// What the client receives of the app's answer: hop-by-hop fields removed, a `Location`
    /// on the app's own address or root-relative path moved under the prefix, cookies scoped
    /// to `/` scoped to the prefix instead (so one app's cookies never reach another), and
    /// none that would set the hub's session cookie (`setsSessionCookie`).
    static func response(
        _ fields: HTTPFields, prefix: String, upstream: String, prefixStripped: Bool
    ) -> HTTPFields {
        let named = connectionOptions(fields)
        var result = HTTPFields()
        for field in fields {
            let name = field.name.canonicalName
            if hopByHop.contains(name) || named.contains(name) { continue }
            switch name {
            case "location":
                result.append(.init(name: .location, value: location(field.value, prefix: prefix, upstream: upstream, prefixStripped: prefixStripped)))
            case "set-cookie" where setsSessionCookie(field.value):
                continue
            case "set-cookie" where prefixStripped:
                result.append(.init(name: .setCookie, value: cookie(field.value, prefix: prefix)))
            default:
                result.append(field)
            }
        }
        return result
    }

    static func location(_ value: String, prefix: String, upstream: String, prefixStripped: Bool) -> String {
        var path = value
        if path.hasPrefix(upstream) {
            path = String(path.dropFirst(upstream.count))
            if path.isEmpty || !path.hasPrefix("/") { path = "/" + path }
        } else if !path.hasPrefix("/") || path.hasPrefix("//") {
            return value  // relative to the current URL, or another site: already right
        }
        guard prefixStripped, !(path == prefix || path.hasPrefix(prefix + "/")) else { return path }
        return prefix + path
    }

    /// An answer that may not have a body (204) announces one: the app may send it after the
    /// head, where the next request on the connection would read it as the start of its
    /// answer, so the connection is not reused. (A 304 may carry the length of what a 200
    /// would have, so it says nothing.) The fields are read only for a 204.
    static func announcesForbiddenBody(
        status: Int, contentLength: @autoclosure () -> Int?, transferEncoding: @autoclosure () -> Bool
    ) -> Bool {
        status == 204 && (transferEncoding() || (contentLength() ?? 0) > 0)
    }

    /// The Set-Cookie `value` sets the hub's session cookie (either name), read as `CookieField` reads a Cookie
    /// field (its first pair is the cookie; attributes follow). The app is never sent the
    /// hub's session cookie, and may not set it either: under its prefix it would shadow the
    /// hub's, signing the browser out of the app, or into another account there. (A page of
    /// the app can still set it from script, unless apps are on origins of their own.)
    static func setsSessionCookie(_ value: String) -> Bool {
        var sets = false
        CookieField.forEachPair(in: value) { pair in
            sets = AuthenticationMiddleware.isSessionCookie(pair.name)
            return false
        }
        return sets
    }

    /// `Path=/…` → `Path={prefix}/…`; a cookie without a path keeps the browser's default,
    /// which is already under the prefix.
    static func cookie(_ value: String, prefix: String) -> String {
        value.split(separator: ";", omittingEmptySubsequences: false).map { part in
            let trimmed = part.drop { $0 == " " }
            guard trimmed.lowercased().hasPrefix("path=") else { return String(part) }
            let path = trimmed.dropFirst(5)
            guard path.hasPrefix("/"), !(path == prefix || path.hasPrefix(prefix + "/")) else { return String(part) }
            return " Path=" + prefix + path
        }.joined(separator: ";")
    }

    private static func connectionOptions(_ fields: HTTPFields) -> Set<String> {
        var options: Set<String> = []
        for value in fields[values: .connection] { addConnectionOptions(of: value, to: &options) }
        return options
    }

    /// Adds the options a Connection field names to `options`, lower-cased, but for those that
    /// name a hop-by-hop field (`keep-alive`, `upgrade`), which goes anyway: for the Connection
    /// fields most clients and apps send, the set stays empty and is never allocated.
    static func addConnectionOptions(of value: String, to options: inout Set<String>) {
        for option in FieldValue.tokens(CollectionOfOne(value)) where !hopByHop.contains(option) { options.insert(option) }
    }

    /// The comma-separated tokens of a list-valued field such as Connection or Upgrade, lower-cased.
    static func tokens(_ values: [String]) -> Set<String> { Set(FieldValue.tokens(values)) }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let xForwardedHost = Self("X-Forwarded-Host")!
    static let xForwardedPrefix = Self("X-Forwarded-Prefix")!
}
