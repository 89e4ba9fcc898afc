import EnvHubCore
import EnvHubKubernetes
import EnvHubRuntime
import Foundation
import EnvHubTestSupport
import Testing

/// The objects of a `data` project (an app with its database): what the cluster is told to run.
@Suite struct EnvironmentObjectsTests {
    static func objects(active: Bool = true) throws -> [JSONValue] {
        let template = try builtInTemplate("data")
        let spec = EnvironmentSpec(projectID: "p-1", owner: UserName(unchecked: "alice"), project: ProjectName(unchecked: "shop"), template: template, secret: "s3cret")
        return EnvironmentObjects(spec: spec).all(active: active)
    }

    static func find(_ objects: [JSONValue], _ kind: String, _ name: String) -> JSONValue? {
        objects.first { $0["kind"]?.string == kind && $0.value(at: "metadata.name")?.string == name }
    }

    @Test func aUserGetsAFencedNamespaceAndEachComponentItsWorkload() throws {
        let objects = try Self.objects()
        #expect(objects.map { $0["kind"]?.string ?? "" } == [
            "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "Secret",
            "Service", "StatefulSet", "Service", "Deployment", "HorizontalPodAutoscaler",
        ])
        for object in objects.dropFirst() {
            #expect(object.value(at: "metadata.namespace")?.string == "envhub-alice")
        }
        for object in objects.dropFirst(4) {
            #expect(object.value(at: "metadata.labels")?["envhub.io/project"]?.string == "shop")
            #expect(object.value(at: "metadata.labels")?["envhub.io/user"]?.string == "alice")
        }
        // Only the hub's pods (and the namespace's own) may connect in.
        let policy = try #require(Self.find(objects, "NetworkPolicy", "only-envhub-in"))
        let from = policy.value(at: "spec.ingress")?.array?.first?["from"]?.array
        #expect(from?.first?.value(at: "podSelector.matchLabels")?["app.kubernetes.io/component"]?.string == "hub")
        #expect(from?.first?.value(at: "namespaceSelector.matchLabels")?["kubernetes.io/metadata.name"]?.string == "envhub")

        // The database keeps its files on a claim that outlives scaling to zero.
        let db = try #require(Self.find(objects, "StatefulSet", "shop-db"))
        #expect(db.value(at: "spec.volumeClaimTemplates")?.array?.first?.value(at: "spec.resources.requests.storage")?.string == "1Gi")
        #expect(db.value(at: "spec.persistentVolumeClaimRetentionPolicy.whenScaled")?.string == "Retain")
        let dbContainer = try #require(db.value(at: "spec.template.spec.containers")?.array?.first)
        #expect(dbContainer["readinessProbe"]?["tcpSocket"] != nil)
        #expect(db.value(at: "spec.template.spec.securityContext.runAsUser")?.int == 999)

        // The app reaches the database by its Service name, with the project's secret.
        let app = try #require(Self.find(objects, "Deployment", "shop-app"))
        let container = try #require(app.value(at: "spec.template.spec.containers")?.array?.first)
        let env = container["env"]?.array ?? []
        #expect(env.first?["name"]?.string == "ENVHUB_PROJECT_SECRET")
        #expect(env.first?.value(at: "valueFrom.secretKeyRef.name")?.string == "shop-secret")
        let value = { (name: String) in env.first { $0["name"]?.string == name }?["value"]?.string }
        #expect(value("DATABASE_URL") == "postgres://app:$(ENVHUB_PROJECT_SECRET)@shop-db.envhub-alice.svc:5432/documents?sslmode=disable")
        #expect(value("USER_ID") == "alice" && value("PROJECT_ID") == "shop" && value("BASE_PATH") == "/u/alice/shop")
        #expect(container.value(at: "readinessProbe.httpGet.path")?.string == "/health")
        #expect(container.value(at: "securityContext.allowPrivilegeEscalation") == .bool(false))
        #expect(container.value(at: "securityContext.capabilities.drop") == ["ALL"])
        #expect(container.value(at: "resources.limits.memory")?.string == "256Mi")
        #expect(app.value(at: "spec.template.spec.securityContext.runAsNonRoot") == .bool(true))
        let secret = try #require(Self.find(objects, "Secret", "shop-secret"))
        #expect(secret.value(at: "data.secret")?.string == Data("s3cret".utf8).base64EncodedString())
        let hpa = try #require(Self.find(objects, "HorizontalPodAutoscaler", "shop-app"))
        #expect(hpa.value(at: "spec.maxReplicas")?.int == 5 && hpa.value(at: "spec.scaleTargetRef.kind")?.string == "Deployment")
    }

    @Test func anInactiveProjectIsScaledToZero() throws {
        let objects = try Self.objects(active: false)
        #expect(Self.find(objects, "StatefulSet", "shop-db")?.value(at: "spec.replicas")?.int == 0)
        #expect(Self.find(objects, "Deployment", "shop-app")?.value(at: "spec.replicas")?.int == 0)
        #expect(try Self.objects(active: true).compactMap { Self.find([$0], "Deployment", "shop-app")?.value(at: "spec.replicas")?.int } == [1])
    }

    @Test func yamlQuotesWhatPlainYAMLWouldMisread() {
        let value: JSONValue = ["a": "yes", "b": "100m", "c": "plain", "d": 5, "e": ["x: y", ""], "f": [:], "g": [["h": true]]]
        #expect(value.yaml == """
            a: "yes"
            b: "100m"
            c: plain
            d: 5
            e:
            - "x: y"
            - ""
            f: {}
            g:
            - h: true

            """)
    }
}
