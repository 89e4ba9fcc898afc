import Testing

@testable import EnvHubServer

/// How the parts of field values are read: lists (Connection, Upgrade, Transfer-Encoding), and
/// Cookie pairs where the hub looks for its session cookie, to find the session and to leave it
/// out of what an app is sent.
@Suite struct FieldValueTests {
    @Test func listsAreReadAsLowerCasedTokensWithoutTheSpacesAroundThem() {
        #expect(FieldValue.tokens(["keep-alive, Close", " , X-Private ,\tUpgrade\t", ""]) == [
            "keep-alive", "close", "x-private", "upgrade",
        ])
        #expect(ForwardedHeaders.tokens(["Upgrade", "upgrade, HTTP2-Settings"]) == ["upgrade", "http2-settings"])
        #expect(FieldValue.tokens(["gzip, CHUNKED"]).last == "chunked")
    }

    /// Connection options that name hop-by-hop fields add nothing: those fields go anyway.
    @Test func connectionOptionsKeepWhatNamesMoreThanTheHopByHopFields() {
        var options: Set<String> = []
        ForwardedHeaders.addConnectionOptions(of: "keep-alive, Upgrade", to: &options)
        #expect(options.isEmpty)
        ForwardedHeaders.addConnectionOptions(of: "Keep-Alive, X-Private, close", to: &options)
        #expect(options == ["x-private", "close"])
    }

    static func pairs(_ field: String) -> [String] {
        var pairs: [String] = []
        CookieField.forEachPair(in: field) { pair in
            pairs.append("\(pair.name)|\(pair.value)|\(pair.text)")
            return true
        }
        return pairs
    }

    @Test func pairsAreReadWithoutTheSpacesAroundThem() {
        #expect(Self.pairs("a=1; b=2;c=3 ;  ;\td = 4\t; flag; v=a=b==; e=; =f; caf\u{e9}=\u{1F600}") == [
            "a|1|a=1", "b|2|b=2", "c|3|c=3", "d|4|d = 4", "|flag|flag", "v|a=b==|v=a=b==", "e||e=", "|f|=f",
            "caf\u{e9}|\u{1F600}|caf\u{e9}=\u{1F600}",
        ])
        #expect(Self.pairs("") == [])
        #expect(Self.pairs(" ; ;") == [])
    }

    @Test func theFirstPairOfTheNameGivesTheValue() {
        #expect(CookieField.value(named: "envhub_session", in: "x=1; envhub_session=s3; envhub_session=s4") == "s3")
        #expect(CookieField.value(named: "envhub_session", in: "envhub_session_old=s1; xenvhub_session=s2") == nil)
        #expect(CookieField.value(named: "envhub_session", in: "envhub_session") == nil)  // a value without a name
        #expect(AuthenticationMiddleware.token(authorization: nil, cookies: ["a=1", "b=2; envhub_session = s5 "]) == "s5")
        for authorization in ["Bearer t6", "bearer t6", "Bearer   t6", "BEARER  t6"] {  // RFC 9110 §11.4: 1*SP after the scheme
            #expect(AuthenticationMiddleware.token(authorization: authorization, cookies: []) == "t6", "\(authorization)")
        }
    }

    /// Whatever spelling signs a request in never reaches the app.
    @Test(arguments: ["envhub_session=s", " envhub_session=s ", "envhub_session =s", "\tenvhub_session\t=\ts", "__Host-envhub_session=s"])
    func aSessionCookieThatSignsInIsNeverPassedOn(_ spelling: String) {
        let field = "a=1;\(spelling); b=2"
        #expect(AuthenticationMiddleware.token(authorization: nil, cookies: [field]) == "s")
        #expect(ForwardedHeaders.appCookies(field) == ["a=1", "b=2"])
        // Nor may an app set it, in any spelling that names it.
        #expect(ForwardedHeaders.setsSessionCookie("\(spelling); Path=/; HttpOnly"))
    }

    /// An app origin's `__Host-` cookie counts before any other: a cookie of the same name a
    /// sibling subdomain planted for the whole domain (sent first when its path is longer) does not.
    @Test func theHostOnlySessionCookieComesFirst() {
        let token = { (fields: [String]) in AuthenticationMiddleware.token(authorization: nil, cookies: fields) }
        #expect(token(["envhub_session=planted; __Host-envhub_session=real"]) == "real")
        #expect(token(["envhub_session=planted", "x=1; __Host-envhub_session=real; __Host-envhub_session=older"]) == "real")
        #expect(token(["envhub_session=first; envhub_session=second"]) == "first")
        #expect(token(["__Host-envhub_session=real"]) == "real")
        #expect(token(["__host-envhub_session=x"]) == nil, "names are compared as sent")
    }

    @Test func anAppsCookieThatOnlyLooksLikeTheSessionIsItsOwn() {
        for value in ["envhub_session_old=1; Path=/", "xenvhub_session=1", "a=1; envhub_session=2", "envhub_session", "a=envhub_session=1",
                      "__Secure-envhub_session=1", "__Host-envhub_session_x=1"] {
            #expect(!ForwardedHeaders.setsSessionCookie(value), "\(value)")
        }
    }
}
