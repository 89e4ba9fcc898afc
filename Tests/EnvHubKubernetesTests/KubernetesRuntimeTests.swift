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
        EnvironmentSpec(projectID: "p-\(project)", owner: UserName(unchecked: "alice"), project: ProjectName(unchecked: project), template: template)
    }

    static func withRuntime(_ body: @escaping @Sendable (KubernetesRuntime, FakeKubernetesAPI) async throws -> Void) async throws {
        try await KubernetesClientTests.withClient { client, api in try await body(KubernetesRuntime(client: client), api) }
    }

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
            try await runtime.start(spec, secret: "s3cret") { step in steps.withLockedValue { $0.append(step) } }
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(steps.withLockedValue { $0 }.contains(.componentReady("db")))
            #expect(steps.withLockedValue { $0 }.contains(.componentStatus("app", "ready")))
            #expect(try await runtime.livingComponents(spec).sorted() == ["app", "db"])
            #expect(runtime.endpoint(of: spec)! == ("shop-app.envhub-alice.svc", 8080))
            let secret = api.object("/api/v1/namespaces/envhub-alice/secrets/shop-secret")?.value(at: "data.secret")

            try await runtime.stop(spec)
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects).sorted(), "scaled to zero, nothing else removed")
            #expect(api.object("/apis/apps/v1/namespaces/envhub-alice/statefulsets/shop-db")?.value(at: "spec.replicas")?.int == 0)
            #expect(try await runtime.livingComponents(spec) == [])

            try await runtime.start(spec, secret: "s3cret")
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(api.object("/api/v1/namespaces/envhub-alice/secrets/shop-secret")?.value(at: "data.secret") == secret, "the same secret")
            #expect(!api.requests.contains { $0.hasPrefix("GET") && $0.contains("/secrets") }, "Secrets are never read")

            try await runtime.delete(spec)
            #expect(api.objectPaths == Self.userObjects.sorted(), "the user's namespace stays for their other projects")
        }
    }

    @Test func anImageThatCannotBePulledFailsTheStartWithTheReason() async throws {
        try await Self.withRuntime { runtime, _ in
            var template = try builtInTemplate("hello")
            template.components[0].image = "registry.example/broken:1"
            await #expect {
                try await runtime.start(Self.spec(template), secret: "s")
            } throws: { "\($0)".contains("cannot start: ImagePullBackOff: Back-off pulling image \"registry.example/broken:1\"") }
        }
    }

    @Test func theReconcilerRestoresWhatWasDeletedByHandAndRemovesOrphans() async throws {
        try await Self.withRuntime { runtime, api in
            let spec = Self.spec(try builtInTemplate("data"))
            try await runtime.start(spec, secret: "s3cret")
            api.remove("/api/v1/namespaces/envhub-alice/services/shop-app")
            api.remove("/apis/apps/v1/namespaces/envhub-alice/deployments/shop-app")
            #expect(try await runtime.repair(spec, secret: "s3cret", active: true).sorted() == ["Deployment shop-app", "Service shop-app"])
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
            #expect(try await runtime.repair(spec, secret: "s3cret", active: true) == [])

            let gone = Self.spec(try builtInTemplate("hello"), project: "gone")
            try await runtime.start(gone, secret: "s")
            let removed = try await runtime.removeOrphans { _, project in project != "gone" }
            #expect(removed.count == 3)  // its Deployment, Service and Secret
            #expect(api.objectPaths == (Self.userObjects + Self.projectObjects + Self.pods).sorted())
        }
    }
}
