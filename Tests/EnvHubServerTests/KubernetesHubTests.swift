import EnvHubCore
import EnvHubKubernetes
import EnvHubRuntime
import EnvHubServer
import EnvHubTestSupport
import Foundation
import Testing

/// The hub with its Kubernetes runtime, against `FakeKubernetesAPI`: what users do through
/// the API becomes objects in the cluster, and the reconciler keeps them as the store says.
@Suite struct KubernetesHubTests {
    /// Every check looks at the cluster.
    static let settings = {
        var settings = KubernetesSettings()
        settings.checkInterval = .zero
        return settings
    }()

    static let project = "/api/users/admin/projects/shop"
    static let apps = "/apis/apps/v1/namespaces/envhub-admin/deployments"
    static let pods = "/api/v1/namespaces/envhub-admin/pods"

    /// A hub whose environments live in the fake cluster, checked and swept often.
    static func withHub(
        templates: URL? = nil, _ body: @escaping @Sendable (TestHub, FakeKubernetesAPI) async throws -> Void
    ) async throws {
        let api = FakeKubernetesAPI()
        try await api.run { port in
            var retry = KubernetesClient.RetryPolicy()
            retry.firstDelay = .milliseconds(10)
            let client = try KubernetesClient(
                connection: KubernetesConnection(server: URL(string: "http://127.0.0.1:\(port)")!, credentials: .token("t0ken"), source: "test"),
                retry: retry)
            do {
                try await TestHub.run(configure: { config in
                    config.runtime = KubernetesRuntime(client: client, settings: Self.settings)
                    config.healthCheckInterval = .milliseconds(100)
                    config.orphanSweepInterval = .milliseconds(100)
                    config.templatesDirectory = templates?.path
                }) { hub in try await body(hub, api) }
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test func projectsBecomeObjectsThatFollowTheirState() async throws {
        try await Self.withHub { hub, api in
            let token = try await hub.adminToken()
            let status = try await hub.request(.get, "/api/status", token: token).object
            #expect((status["runtime"] as? [String: Any])?["kind"] as? String == "kubernetes")

            try await hub.startProject("shop", template: "hello", token: token)
            #expect(api.object("\(Self.apps)/shop-web")?.value(at: "spec.replicas")?.int == 1)
            let record = try await LifecycleTests.record(hub, "shop")
            #expect(record.exposedEndpoint == Endpoint(host: "shop-web.envhub-admin.svc", port: 8080))
            #expect(record.components.allSatisfy { $0.pid == nil })

            // Deleted by hand while it should run: put back by the reconciler.
            api.remove("\(Self.apps)/shop-web")
            try await waitFor("the Deployment to be put back") { api.object("\(Self.apps)/shop-web") != nil ? true : nil }
            #expect(try await hub.request(.get, Self.project, token: token).object["state"] as? String == "active")

            // The logs endpoint reads the pods' logs.
            api.writeLog("\(Self.pods)/shop-web-0", "GET /health 200")
            let logs = try await hub.request(.get, "\(Self.project)/logs?tail=5", token: token)
            #expect(logs.text == "[web] GET /health 200\n")

            _ = try await hub.request(.post, "\(Self.project)/deactivate", token: token)
            _ = try await LifecycleTests.waitForState(hub, token, "inactive", path: Self.project)
            #expect(api.object("\(Self.apps)/shop-web")?.value(at: "spec.replicas")?.int == 0, "scaled to zero, kept")

            _ = try await hub.request(.delete, Self.project, token: token)
            try await waitFor("the project's objects to be gone") {
                api.objectPaths.contains { $0.contains("/shop-") } ? nil : true
            }
        }
    }

    @Test func aCrashLoopingPodIsRestartedWithTheReasonShown() async throws {
        try await Self.withHub { hub, api in
            let token = try await hub.adminToken()
            try await hub.startProject("shop", template: "hello", token: token)
            var pod = try #require(api.object("\(Self.pods)/shop-web-0"))
            pod["status"] = ["containerStatuses": [["name": "main", "state": ["waiting": ["reason": "CrashLoopBackOff", "message": "back-off 10s"]]]]]
            api.put("\(Self.pods)/shop-web-0", pod)
            let restarting = try await LifecycleTests.waitForState(hub, token, "starting", path: Self.project)
            #expect((restarting["stateReason"] as? String)?.contains("web: CrashLoopBackOff: back-off 10s") == true, "\(restarting)")
            _ = try await LifecycleTests.waitForState(hub, token, "active", path: Self.project)
            #expect(api.object("\(Self.pods)/shop-web-0")?.value(at: "status.containerStatuses")?.array?.first?.value(at: "state.running") != nil)
        }
    }

    @Test func aTemplateWhoseImageCannotBePulledFailsWithTheReason() async throws {
        let templates = try TestHub.templateDirectory("broken", """
            name: broken
            title: Broken
            description: An image that does not exist.
            expose: web
            components:
              - name: web
                image: registry.example/broken:1
                command: ["serve"]
                port: 8080
            """)
        defer { try? FileManager.default.removeItem(at: templates) }
        try await Self.withHub(templates: templates) { hub, _ in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "shop", "template": "broken"])
            _ = try await hub.request(.post, "\(Self.project)/activate", token: token)
            let failed = try await LifecycleTests.waitForState(hub, token, "failed", path: Self.project)
            #expect((failed["stateReason"] as? String)?.contains("web cannot start: ImagePullBackOff") == true, "\(failed)")
        }
    }

    @Test func objectsOfProjectsThatNoLongerExistAreRemoved() async throws {
        try await Self.withHub { hub, api in
            let token = try await hub.adminToken()
            _ = try await hub.request(.post, "/api/users/admin/projects", token: token, json: ["name": "shop", "template": "hello"])
            // Left behind by a project deleted while the hub could not reach the cluster.
            let labels: JSONValue = [
                "app.kubernetes.io/managed-by": "envhub", "envhub.io/user": "admin", "envhub.io/project": "gone",
            ]
            api.put("/api/v1/namespaces/envhub-admin/services/gone-web", [
                "apiVersion": "v1", "kind": "Service",
                "metadata": ["name": "gone-web", "namespace": "envhub-admin", "labels": labels],
            ])
            try await waitFor("the orphan to be removed") {
                api.object("/api/v1/namespaces/envhub-admin/services/gone-web") == nil ? true : nil
            }
        }
    }
}
