import Hummingbird

/// The per-user bot: `GET /` → `{"message": "Hello from Flask bot of user <USER_ID>!"}`.
struct HelloWorkload {
    let environment: WorkloadEnvironment

    func addRoutes(to router: Router<BasicRequestContext>) {
        let message = "Hello from Flask bot of user \(environment.userID)!"
        router.get("/") { _, _ in WorkloadJSON.response(["message": message]) }
    }
}
