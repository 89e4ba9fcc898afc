import EnvHubCore
import EnvHubKubernetes
import EnvHubRuntime
import EnvHubTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// The environment lifecycle on Kubernetes, against `FakeKubernetesAPI` (which runs the pods
/// of the workloads it is given).
@Suite struct KubernetesRuntimeTests {
    static func spec(_ template: Template, project: String = "shop") -> EnvironmentSpec {
        EnvironmentSpec(projectID: "p-\(project)", owner: UserName(unchecked: "alice"), project: ProjectName(unchecked: project),
                        template: template, secret: "s3cret")
    }

    static func withRuntime(_ body: @escaping @Sendable (KubernetesRuntime, FakeKubernetesAPI) async throws -> Void) async throws {
        try await KubernetesClientTests.withClient { client, api in try await body(KubernetesRuntime(client: client, settings: Self.settings), api) }
    }

    /// Every check looks at the cluster.
    static let settings = {
        var settings = KubernetesSettings()
        settings.checkInterval = .zero
        return settings
    }()

    static let userObjects = [
        "/api/v1/namespaces/envhub-alice", "/api/v1/namespaces/envhub-alice/limitranges/envhub-defaults",
        "/api/v1/namespaces/envhub-alice/resourcequotas/envhub-quota", "/apis/networking.k8s.io/v1/namespaces/envhub-alice/networkpolicies/only-envhub-in",
    ]
    static let projectObjects = [
        "/api/v1/namespaces/envhub-alice/secrets/shop-secret", "/api/v1/namespaces/envhub-alice/services/shop-app",
        "/api/v1/namespaces/envhub-alice/services/shop-db", "/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app",
        "/apis/apps/v1/namespaces/envhub-alice/statefulsets/shop-db", "/apis/autoscaling/v2/namespaces/envhub-alice/horizontalpodautoscalers/shop-app",
    ]
    static let pods = ["/api/v1/namespaces/envhub-alice/pods/shop-app-0", "/api/v1/namespaces/envhub-alice/pods/shop-db-0"]

    @Test func activateDeactivateActivateDeleteLeavesExactlyTheExpectedObjects() async throws {
        try await Self.withRuntime { runtime, api in
            let spec = Self.spec(try builtInTemplate("data"))
            let steps = NIOLockedValueBox<[StartStep]>([])
            // Faults on the way converge: retried, and no object twice.
            api.inject(.init(method: "PATCH", pathContains: "/deployments/shop-app", status: 500))
            api.inject(.init(method: "PATCH", pathContains: "/statefulsets/shop-db", status: 429))
            let record = try await runtime.start(spec, progress: { step in steps.withLockedValue { $0.append(step) } })
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(steps.withLockedValue { $0 }.contains(.componentReady("db")))
            #expect(steps.withLockedValue { $0 }.contains(.componentStatus("app", "ready")))
            #expect(try await runtime.livingComponents(spec).sorted() == ["app", "db"])
            #expect(record.exposedEndpoint == Endpoint(host: "shop-app.envhub-alice.svc", port: 8080))
            #expect(record.components.map(\.endpoint.description) == ["shop-db.envhub-alice.svc:5432", "shop-app.envhub-alice.svc:8080"])
            let secret = api.object("/api/v1/namespaces/envhub-alice/secrets/shop-secret")?.value(at: "data.secret")

            try await runtime.stop(spec.identity, record: record)
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects).sorted(), "scaled to zero, nothing else removed")
            #expect(api.object("/apis/apps/v1/namespaces/envhub-alice/statefulsets/shop-db")?.value(at: "spec.replicas")?.int == 0)
            #expect(try await runtime.livingComponents(spec) == [])

            _ = try await runtime.start(spec)
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(api.object("/api/v1/namespaces/envhub-alice/secrets/shop-secret")?.value(at: "data.secret") == secret, "the same secret")
            #expect(!api.requests.contains { $0.hasPrefix("GET") && $0.contains("/secrets") }, "Secrets are never read")

            try await runtime.delete(spec.identity, record: nil)
            #expect(api.objectPaths == Self.userObjects.sorted(), "the user's namespace stays for their other projects")
        }
    }

    @Test func anImageThatCannotBePulledFailsTheStartWithTheReason() async throws {
        try await Self.withRuntime { runtime, _ in
            var template = try builtInTemplate("hello")
            template.components[0].image = "registry.example/broken:1"
            await #expect {
                try await runtime.start(Self.spec(template))
            } throws: { "\($0)".contains("cannot start: ImagePullBackOff: Back-off pulling image \"registry.example/broken:1\"") }
        }
    }

    @Test func theReconcilerRestoresWhatWasDeletedByHandAndRemovesOrphans() async throws {
        try await Self.withRuntime { runtime, api in
            let spec = Self.spec(try builtInTemplate("data"))
            let record = try await runtime.start(spec)
            api.remove("/api/v1/namespaces/envhub-alice/services/shop-app")
            api.remove("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app")
            #expect(await runtime.check(spec, record: record) == .repaired(["Service shop-app", "Deployment shop-app"]))
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(await runtime.check(spec, record: record) == .running)
            try await runtime.client.scale("/apis/apps/v1/namespaces/envhub-alice/statefulsets/shop-db", replicas: 0)
            #expect(await runtime.check(spec, record: record) == .repaired(["StatefulSet shop-db (scaled up again)"]))
            #expect(api.object("/apis/apps/v1/namespaces/envhub-alice/statefulsets/shop-db")?.value(at: "spec.replicas")?.int == 1)

            let gone = Self.spec(try builtInTemplate("hello"), project: "gone")
            _ = try await runtime.start(gone)
            let removed = try await runtime.removeOrphans { _, project in project != "gone" }
            #expect(removed.count == 3)  // its Deployment, Service and Secret
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
        }
    }

    @Test func aFailedStartLeavesNothingRunning() async throws {
        try await Self.withRuntime { runtime, api in
            var template = try builtInTemplate("hello")
            template.components[0].image = "registry.example/broken:1"
            let spec = Self.spec(template)
            _ = try? await runtime.start(spec)
            #expect(api.object("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-web")?.value(at: "spec.replicas")?.int == 0)
            #expect(!api.objectPaths.contains { $0.contains("/pods/") })
        }
    }

    @Test func aPodStuckOnAHopelessReasonIsACrash() async throws {
        try await Self.withRuntime { runtime, api in
            let spec = Self.spec(try builtInTemplate("hello"))
            let record = try await runtime.start(spec)
            let pod = "/api/v1/namespaces/envhub-alice/pods/shop-web-0"
            var object = try #require(api.object(pod))
            object["status"] = ["containerStatuses": [["name": "main", "state": ["waiting": ["reason": "CrashLoopBackOff", "message": "back-off 5m0s"]]]]]
            api.put(pod, object)
            #expect(await runtime.check(spec, record: record) == .crashed("web: CrashLoopBackOff: back-off 5m0s"))
        }
    }

    @Test func logsAreTheLastLinesOfEachPodThenWhatTheyWriteNext() async throws {
        try await Self.withRuntime { runtime, api in
            let spec = Self.spec(try builtInTemplate("data"))
            _ = try await runtime.start(spec)
            api.writeLog(Self.pods[0], "app line 1")
            api.writeLog(Self.pods[0], "app line 2")
            api.writeLog(Self.pods[1], "db line 1")
            #expect(await runtime.lastLines(spec.identity, count: 1) == ["[app] app line 2", "[db] db line 1"])

            var lines = runtime.followLogs(spec.identity).makeAsyncIterator()
            // The follower starts with the next line; what was there is not sent again.
            try await waitFor("a log follower for each pod") { api.logFollowersStarted >= 2 ? true : nil }
            api.writeLog(Self.pods[1], "db line 2")
            #expect(await lines.next() == "[db] db line 2")
            api.writeLog(Self.pods[0], "app line 3")
            #expect(await lines.next() == "[app] app line 3")
        }
    }
}
