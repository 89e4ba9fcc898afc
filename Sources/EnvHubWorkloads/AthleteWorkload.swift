import Hummingbird

/// The favourite-athlete server: `GET /` answers JSON; any other method gets 405 with the
/// plain text `Only GET method valid`, as the original did.
struct AthleteWorkload {
    static let defaultAthlete = "Serena Williams"
    let environment: WorkloadEnvironment

    func addRoutes(to router: Router<BasicRequestContext>) {
        let athlete = environment.variables["FAVORITE_ATHLETE"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultAthlete
        router.get("/") { _, _ in WorkloadJSON.response(["favorite_athlete": athlete]) }
        for method: HTTPRequest.Method in [.post, .put, .patch, .delete, .options, .init("TRACE")!] {
            router.on("/", method: method) { _, _ in
                Response(status: .methodNotAllowed, headers: [.contentType: "text/plain; charset=utf-8", .allow: "GET"],
                         body: .init(byteBuffer: ByteBuffer(string: "Only GET method valid")))
            }
        }
    }
}
