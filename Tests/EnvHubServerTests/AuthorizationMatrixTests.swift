import AsyncHTTPClient
import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Every route × {anonymous, owner, another user, admin} → the status that caller must get.
/// `alice` owns the project `web`; `bob` is the other user. Each cell runs on a fresh hub, with
/// users' apps on origins of their own (`AppOrigins`).
@Suite struct AuthorizationMatrixTests {
    enum Caller: String, CaseIterable, Sendable {
        case anonymous, owner, other, admin
    }

    struct Cell: Sendable, CustomStringConvertible {
        let method: HTTPRequest.Method
        let path: String
        let body: [String: any Sendable]?
        /// anonymous, owner, other, admin
        let expected: [Int]
        /// An answer that never ends (server-sent events): only its status is read, over a real socket.
        var streaming = false
        /// Sent after the path, `?…`.
        var query = ""
        var description: String { "\(method.rawValue) \(path)" }
    }

    static let alicePassword = "alice-password"

    static let cells: [Cell] = [
        Cell(method: .post, path: "/api/auth/register", body: ["username": "carol", "password": "password-123"], expected: [403, 403, 403, 403]),
        Cell(method: .post, path: "/api/auth/login", body: ["username": "alice", "password": alicePassword], expected: [200, 200, 200, 200]),
        Cell(method: .post, path: "/api/auth/logout", body: nil, expected: [401, 204, 204, 204]),
        Cell(method: .get, path: "/api/auth/me", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .post, path: "/api/auth/verify", body: ["token": "x.y.z"], expected: [200, 200, 200, 200]),
        // A ticket to alice's app origin (the hubs here have app origins): for her, and an admin.
        Cell(method: .get, path: "/api/auth/app-ticket", body: nil, expected: [401, 302, 404, 302], query: "?next=/u/alice/web/&state=1"),
        Cell(method: .get, path: "/api/users", body: nil, expected: [401, 403, 403, 200]),
        Cell(method: .post, path: "/api/users", body: ["username": "carol", "password": "password-123"], expected: [401, 403, 403, 201]),
        Cell(method: .get, path: "/api/users/{user}", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .patch, path: "/api/users/{user}", body: ["bio": "new bio"], expected: [401, 200, 403, 200]),
        Cell(method: .delete, path: "/api/users/{user}", body: nil, expected: [401, 403, 403, 204]),
        Cell(method: .post, path: "/api/users/{user}/password",
             body: ["currentPassword": alicePassword, "newPassword": "changed-password"], expected: [401, 204, 403, 204]),
        Cell(method: .get, path: "/api/users/{user}/projects", body: nil, expected: [401, 200, 404, 200]),
        Cell(method: .post, path: "/api/users/{user}/projects", body: ["name": "api", "template": "hello"], expected: [401, 201, 404, 201]),
        Cell(method: .get, path: "/api/users/{user}/projects/{project}", body: nil, expected: [401, 200, 404, 200]),
        Cell(method: .put, path: "/api/users/{user}/projects/{project}", body: ["name": "web", "template": "athlete"], expected: [401, 200, 404, 200]),
        Cell(method: .patch, path: "/api/users/{user}/projects/{project}", body: ["description": "d"], expected: [401, 200, 404, 200]),
        Cell(method: .delete, path: "/api/users/{user}/projects/{project}", body: nil, expected: [401, 204, 404, 204]),
        Cell(method: .post, path: "/api/users/{user}/projects/{project}/activate", body: nil, expected: [401, 202, 404, 202]),
        Cell(method: .post, path: "/api/users/{user}/projects/{project}/deactivate", body: nil, expected: [401, 200, 404, 200]),
        Cell(method: .get, path: "/api/users/{user}/projects/{project}/events", body: nil, expected: [401, 200, 404, 200], streaming: true),
        Cell(method: .get, path: "/api/users/{user}/projects/{project}/logs", body: nil, expected: [401, 200, 404, 200]),
        // `web` is a `hello` project: it has no agent to talk to (409), and so no reply to follow (204).
        Cell(method: .post, path: "/api/users/{user}/projects/{project}/messages", body: ["message": "hello"], expected: [401, 409, 404, 409]),
        Cell(method: .get, path: "/api/users/{user}/projects/{project}/messages", body: nil, expected: [401, 200, 404, 200]),
        Cell(method: .get, path: "/api/users/{user}/projects/{project}/messages/stream", body: nil, expected: [401, 204, 404, 204]),
        // Alice created the room `general` and wrote its message 1; every signed-in user may chat.
        Cell(method: .get, path: "/api/rooms", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .post, path: "/api/rooms", body: ["name": "random"], expected: [401, 201, 201, 201]),
        Cell(method: .get, path: "/api/rooms/{room}", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .delete, path: "/api/rooms/{room}", body: nil, expected: [401, 403, 403, 204]),
        Cell(method: .get, path: "/api/rooms/{room}/messages", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .post, path: "/api/rooms/{room}/messages", body: ["text": "hi"], expected: [401, 201, 201, 201]),
        Cell(method: .patch, path: "/api/rooms/{room}/messages/{id}", body: ["text": "edited"], expected: [401, 200, 403, 200]),
        Cell(method: .delete, path: "/api/rooms/{room}/messages/{id}", body: nil, expected: [401, 204, 403, 204]),
        Cell(method: .post, path: "/api/rooms/{room}/read", body: ["id": 1], expected: [401, 204, 204, 204]),
        Cell(method: .get, path: "/api/templates", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .get, path: "/api/stats", body: nil, expected: [401, 200, 200, 200]),
        Cell(method: .get, path: "/api/status", body: nil, expected: [200, 200, 200, 200]),
        Cell(method: .get, path: "/healthz", body: nil, expected: [200, 200, 200, 200]),
        Cell(method: .get, path: "/readyz", body: nil, expected: [200, 200, 200, 200]),
        Cell(method: .get, path: "/metrics", body: nil, expected: [200, 200, 200, 200]),
        Cell(method: .get, path: "/openapi.json", body: nil, expected: [200, 200, 200, 200]),
    ]

    @Test func theMatrixCoversEveryRoute() async throws {
        try await TestHub.run { hub in
            let routes = Set(hub.hub.routes.routes.map { "\($0.method.rawValue) \($0.path)" })
            let covered = Set(Self.cells.map(\.description))
            #expect(routes.subtracting(covered).isEmpty, "routes without a row in the matrix: \(routes.subtracting(covered).sorted())")
            #expect(covered.subtracting(routes).isEmpty, "rows for routes that do not exist: \(covered.subtracting(routes).sorted())")
        }
    }

    @Test(arguments: cells)
    func eachCallerGetsTheExpectedStatus(_ cell: Cell) async throws {
        for (index, caller) in Caller.allCases.enumerated() {
            try await TestHub.run(configure: { $0.appOrigins = AppOriginTests.origins }, live: cell.streaming) { hub in
                let admin = try await hub.adminToken()
                let alice = try await hub.createUser("alice", password: Self.alicePassword, adminToken: admin)
                let bob = try await hub.createUser("bob", adminToken: admin)
                let project = try await hub.request(.post, "/api/users/alice/projects", token: alice, json: ["name": "web", "template": "hello"])
                #expect(project.status == .created)
                #expect(try await hub.request(.post, "/api/rooms", token: alice, json: ["name": "general"]).status == .created)
                #expect(try await hub.request(.post, "/api/rooms/general/messages", token: alice, json: ["text": "first"]).status == .created)
                let token: String? = switch caller {
                case .anonymous: nil
                case .owner: alice
                case .other: bob
                case .admin: admin
                }
                let path = cell.path.replacingOccurrences(of: "{user}", with: "alice").replacingOccurrences(of: "{project}", with: "web")
                    .replacingOccurrences(of: "{room}", with: "general").replacingOccurrences(of: "{id}", with: "1") + cell.query
                if cell.streaming {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(try #require(hub.client.port))\(path)")
                    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                    #expect(Int(response.status.code) == cell.expected[index], "\(cell) as \(caller.rawValue)")
                    return
                }
                let response = try await hub.request(cell.method, path, token: token, json: cell.body)
                #expect(response.status.code == cell.expected[index], "\(cell) as \(caller.rawValue): \(response.text)")
            }
        }
    }
}
