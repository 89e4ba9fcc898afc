import EnvHubServer
import EnvHubTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `/openapi.json` is the contract: it must describe exactly the routes the server has.
@Suite struct OpenAPIContractTests {
    @Test func theDocumentAndTheRouterAgree() async throws {
        try await TestHub.run { hub in
            let response = try await hub.request(.get, "/openapi.json")
            #expect(response.status == .ok)
            let document = response.object
            #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
            var documented: Set<String> = []
            for (path, operations) in paths {
                for method in operations.keys where methods.contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            let served = Set(hub.hub.routes.routes.map(\.description))
            #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented).sorted())")
            #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served).sorted())")
        }
    }

    @Test func everyOperationDescribesItsResponsesWithSchemas() async throws {
        try await TestHub.run { hub in
            let document = try await hub.request(.get, "/openapi.json").object
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let components = document["components"] as? [String: Any]
            let sharedResponses = components?["responses"] as? [String: Any] ?? [:]
            for (path, operations) in paths {
                for (method, value) in operations {
                    guard let operation = value as? [String: Any] else { continue }
                    let responses = try #require(operation["responses"] as? [String: Any], "\(method) \(path) has no responses")
                    // Success: an answer, or a redirect (a browser's step in signing in to an app origin).
                    let success = responses.keys.filter { $0.hasPrefix("2") || $0.hasPrefix("3") }
                    #expect(!success.isEmpty, "\(method) \(path) has no success response")
                    for (status, response) in responses {
                        var response = response as? [String: Any] ?? [:]
                        if let reference = response["$ref"] as? String {
                            response = sharedResponses[String(reference.split(separator: "/").last ?? "")] as? [String: Any] ?? [:]
                        }
                        if status == "204" || status.hasPrefix("3") { continue }
                        let content = response["content"] as? [String: [String: Any]]
                        #expect(content?.values.allSatisfy { $0["schema"] != nil } == true, "\(method) \(path) \(status) lacks a schema")
                    }
                    let bodiless = path == "/api/auth/logout" || path.hasSuffix("/activate") || path.hasSuffix("/deactivate")
                    if ["post", "put", "patch"].contains(method), !bodiless {
                        #expect(operation["requestBody"] != nil, "\(method) \(path) has no request body")
                    }
                }
            }
        }
    }
}
