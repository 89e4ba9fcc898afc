import EnvHubCore
import EnvHubKubernetes
import EnvHubRuntime
import EnvHubTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// The client against `FakeKubernetesAPI`, over real HTTP.
@Suite struct KubernetesClientTests {
    static func withClient(_ body: @escaping @Sendable (KubernetesClient, FakeKubernetesAPI) async throws -> Void) async throws {
        let api = FakeKubernetesAPI()
        try await api.run { port in
            var retry = KubernetesClient.RetryPolicy()
            retry.firstDelay = .milliseconds(10)
            // Room for a loaded CI machine (3 s once was not); the slow fault below holds its
            // answer back until the test ends.
            retry.timeout = .seconds(10)
            let client = try KubernetesClient(
                connection: KubernetesConnection(server: URL(string: "http://127.0.0.1:\(port)")!, credentials: .token("t0ken"), source: "test"),
                retry: retry)
            do {
                try await body(client, api)
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    static func objects(active: Bool) throws -> EnvironmentObjects {
        let spec = EnvironmentSpec(projectID: "p-1", owner: UserName(unchecked: "alice"), project: ProjectName(unchecked: "shop"),
                                   template: try builtInTemplate("data"), secret: "s3cret")
        return EnvironmentObjects(spec: spec)
    }

    @Test func applyingTwiceLeavesOneObjectAndDeletesAreIdempotent() async throws {
        try await Self.withClient { client, api in
            let objects = try Self.objects(active: true)
            for object in objects.all(active: true) { try await client.apply(object) }
            let paths = api.objectPaths
            #expect(paths.count == 12)  // 10 objects and the 2 pods the fake runs for the workloads
            for object in objects.all(active: true) { try await client.apply(object) }
            #expect(api.objectPaths == paths)
            let app = try #require(try await client.get("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app"))
            #expect(app.value(at: "spec.replicas")?.int == 1)
            #expect(app.value(at: "metadata.labels")?["envhub.io/project"]?.string == "shop")

            let listed = try await client.list("/apis/apps/v1/namespaces/envhub-alice/deployments", labelSelector: objects.projectSelector)
            #expect(listed.items.count == 1 && !listed.resourceVersion.isEmpty)
            #expect(try await client.list("/api/v1/namespaces/envhub-alice/services", labelSelector: "envhub.io/project=other").items.isEmpty)

            try await client.scale("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app", replicas: 0)
            #expect(api.object("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app")?.value(at: "spec.replicas")?.int == 0)

            #expect(try await client.delete("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app"))
            #expect(try await client.get("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app") == nil)
            #expect(try await client.delete("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app") == false)
            #expect(try await client.delete("/api/v1/namespaces/envhub-alice"))
            #expect(api.objectPaths.isEmpty, "the namespace takes its objects with it")
        }
    }

    @Test func throttlingServerErrorsAndTimeoutsAreRetriedAndConflictsAreNot() async throws {
        try await Self.withClient { client, api in
            let namespace = try #require(try Self.objects(active: true).userObjects.first)
            for status in [429, 500, 503] { api.inject(.init(method: "PATCH", pathContains: "/namespaces/envhub-alice", status: status)) }
            api.inject(.init(method: "PATCH", pathContains: "/namespaces/envhub-alice", status: 200, delay: .seconds(600)))
            try await client.apply(namespace)
            #expect(api.objectPaths == ["/api/v1/namespaces/envhub-alice"])
            #expect(api.requests.filter { $0.hasPrefix("PATCH") }.count == 5)

            api.inject(.init(method: "PATCH", pathContains: "/namespaces/envhub-alice", status: 409))
            await #expect(throws: KubernetesError.status(409, reason: "Conflict", message: "injected 409")) {
                try await client.apply(namespace)
            }
            for _ in 0..<5 { api.inject(.init(method: "GET", pathContains: "/namespaces/envhub-alice", status: 500)) }
            await #expect(throws: KubernetesError.self) { _ = try await client.get("/api/v1/namespaces/envhub-alice") }
        }
    }

    @Test func aWatchResumesWhereItStoppedAndListsAgainWhenItsVersionIsGone() async throws {
        try await Self.withClient { client, api in
            let path = "/api/v1/namespaces/envhub-alice/services"
            let service = { (name: String, port: Int) -> JSONValue in
                ["apiVersion": "v1", "kind": "Service",
                 "metadata": ["name": .string(name), "namespace": "envhub-alice", "labels": ["envhub.io/project": "shop"]],
                 "spec": ["ports": [["port": .number(Double(port))]]]]
            }
            api.put("\(path)/one", service("one", 1))
            let seen = NIOLockedValueBox<[String]>([])
            let watcher = Task {
                for await event in client.changes(path, labelSelector: "envhub.io/project=shop") {
                    let port = event.object.value(at: "spec.ports")?.array?.first?["port"]?.int ?? 0
                    seen.withLockedValue { $0.append("\(event.kind.rawValue) \(event.object.value(at: "metadata.name")?.string ?? "") \(port)") }
                }
            }
            defer { watcher.cancel() }
            let waitFor = { (count: Int) in
                _ = try await EnvHubTestSupport.waitFor("\(count) events", timeout: .seconds(10)) {
                    seen.withLockedValue { $0.count >= count ? true : nil }
                }
            }
            try await waitFor(1)
            api.put("\(path)/two", service("two", 2))
            api.put("\(path)/one", service("one", 11))
            try await waitFor(3)
            // The server ends the watch; what happens meanwhile arrives once, after the resume.
            let watches = api.watchesStarted
            api.endWatches()
            api.put("\(path)/two", service("two", 22))
            try await waitFor(4)
            // The change may have come with the end of the old watch: wait for the new one.
            _ = try await EnvHubTestSupport.waitFor("the watch to resume", timeout: .seconds(10)) {
                api.watchesStarted > watches ? true : nil
            }
            // History forgotten under an open watch: an ERROR event with 410, then a fresh
            // list (everything as added again), then watching goes on.
            api.expireWatches()
            try await waitFor(6)
            api.remove("\(path)/one")
            api.put("\(path)/three", service("three", 3))
            try await waitFor(8)
            // Resuming from a forgotten version: 410 as the answer, and a list again.
            api.inject(.init(method: "GET", pathContains: path, status: 410))
            api.endWatches()
            try await waitFor(10)
            let events = seen.withLockedValue { $0 }
            #expect(Array(events.prefix(4)) == ["ADDED one 1", "ADDED two 2", "MODIFIED one 11", "MODIFIED two 22"])
            #expect(Set(events[4..<6]) == ["ADDED one 11", "ADDED two 22"])
            #expect(Array(events[6..<8]) == ["DELETED one 11", "ADDED three 3"])
            #expect(Set(events[8..<10]) == ["ADDED two 22", "ADDED three 3"])
            #expect(events.count == 10)
            #expect(api.requests.contains { $0.hasPrefix("GET \(path)") })
        }
    }
}
