import EnvHubStore
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import EnvHubServer

@Suite struct ErrorTests {
    @Test func unknownRoutesAnswerJSON404() async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.get, "/api/nothing-here")
            #expect(response.status == .notFound)
            #expect(response.errorCode == "not_found")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test func wrongMethodsAnswer405WithAllow() async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.delete, "/api/templates")
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "GET")
            #expect(response.errorCode == "method_not_allowed")
            let project = try await hub.request(.post, "/api/users/alice/projects/web")
            #expect(project.status == .methodNotAllowed)
            #expect(Set(project.headers[.allow]?.components(separatedBy: ", ") ?? []) == ["GET", "PUT", "PATCH", "DELETE"])
        }
    }

    @Test func malformedBodiesAnswer400NamingTheProblem() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let notJSON = try await hub.request(.post, "/api/users", token: token, rawBody: "{\"username\": ")
            #expect(notJSON.status == .badRequest)
            #expect(notJSON.errorMessage == "the body is not valid JSON")
            let array = try await hub.request(.post, "/api/users", token: token, rawBody: "[1, 2]")
            #expect(array.errorMessage == "the body must be a JSON object")
            let missing = try await hub.request(.post, "/api/users", token: token, json: ["username": "alice"])
            #expect(missing.errorMessage == "password is required")
            let wrongType = try await hub.request(
                .post, "/api/users", token: token, json: ["username": "alice", "password": "password-123", "admin": "yes"])
            #expect(wrongType.errorMessage == "admin must be true or false")
            let empty = try await hub.request(.post, "/api/auth/login")
            #expect(empty.status == .badRequest)
            // Nothing was created by any of these.
            let users = try await hub.request(.get, "/api/users", token: token)
            #expect((users.object["users"] as? [Any])?.count == 1)
        }
    }

    @Test func bodiesOverOneMebibyteAnswer413() async throws {
        try await TestHub.run { hub in
            let token = try await hub.adminToken()
            let huge = "{\"bio\": \"" + String(repeating: "x", count: (1 << 20) + 10) + "\"}"
            let response = try await hub.request(.patch, "/api/users/admin", token: token, rawBody: huge)
            #expect(response.status == .contentTooLarge)
            #expect(response.errorCode == "body_too_large")
            let me = try await hub.request(.get, "/api/auth/me", token: token)
            #expect(me.object["bio"] as? String == "")
        }
    }

    @Test func anonymousCallsToProtectedRoutesAnswer401() async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.get, "/api/users/admin/projects")
            #expect(response.status == .unauthorized)
            #expect(response.errorCode == "unauthenticated")
            let garbage = try await hub.request(.get, "/api/auth/me", token: "not.a.token")
            #expect(garbage.status == .unauthorized)
        }
    }

    /// A database out of reach is a 503 the client may retry, saying so; any other failure a 500.
    @Test func aDatabaseOutOfReachAnswers503AndOtherFailures500() async throws {
        let router = Router(context: HubRequestContext.self)
        router.add(middleware: ErrorMiddleware(catalog: RouteCatalog()))
        router.get("/down") { _, _ -> Response in throw SQLDriverError.unavailable("connection refused") }
        router.get("/broken") { _, _ -> Response in throw SQLDriverError.unexpectedColumn("id", "text") }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/down", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains(#""code":"unavailable""#), "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/broken", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(String(buffer: response.body).contains(#""code":"internal""#), "\(String(buffer: response.body))")
            }
        }
    }
}
