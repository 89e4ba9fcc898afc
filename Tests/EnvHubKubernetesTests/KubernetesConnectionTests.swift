import EnvHubKubernetes
import EnvHubTestSupport
import Foundation
import Testing

/// Finding the Kubernetes configuration, and saying what is wrong with a broken one.
@Suite struct KubernetesConnectionTests {
    /// A fresh directory, removed afterwards.
    static func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kube-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    static func kubeconfig(cluster: String, user: String, context: String = "main") -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: \(context)
        contexts:
        - name: main
          context: {cluster: c, user: u, namespace: tools}
        clusters:
        - name: c
          cluster:
        \(cluster)
        users:
        - name: u
          user:
        \(user)
        """
    }

    /// A self-signed certificate and its key, made by openssl.
    static func certificate(in directory: String) throws -> (certificate: String, key: String) {
        let openssl = try SpawnedProcess("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=envhub-test", "-keyout", directory + "/client.key", "-out", directory + "/client.crt",
        ], environment: ProcessInfo.processInfo.environment)
        var status: Int32?
        while status == nil {
            status = openssl.exitStatus()
            if status == nil { usleep(10_000) }
        }
        #expect(status == 0, "\(openssl.output)")
        return (try String(contentsOfFile: directory + "/client.crt", encoding: .utf8),
                try String(contentsOfFile: directory + "/client.key", encoding: .utf8))
    }

    @Test func eachSourceInItsTurn() throws {
        try Self.withDirectory { directory in
            let (certificate, key) = try Self.certificate(in: directory)
            let base64 = { (text: String) in Data(text.utf8).base64EncodedString() }
            // KUBECONFIG_BASE64, with everything inline.
            let inline = Self.kubeconfig(
                cluster: "    server: https://k8s.example:6443\n    certificate-authority-data: \(base64(certificate))",
                user: "    client-certificate-data: \(base64(certificate))\n    client-key-data: \(base64(key))")
            let fromBase64 = try KubernetesConnection.load(environment: ["KUBECONFIG_BASE64": base64(inline), "KUBECONFIG": "/nowhere"], home: directory)
            #expect(fromBase64.server.absoluteString == "https://k8s.example:6443")
            #expect(fromBase64.credentials == .clientCertificate(certificatePEM: Array(certificate.utf8), keyPEM: Array(key.utf8)))
            #expect(fromBase64.certificateAuthorityPEM == Array(certificate.utf8))
            #expect(fromBase64.namespace == "tools" && fromBase64.source == "KUBECONFIG_BASE64")
            _ = try KubernetesClient.tlsConfiguration(fromBase64)  // the PEMs load

            // KUBECONFIG naming a file whose CA is a file next to it; a token.
            try Self.kubeconfig(cluster: "    server: https://10.0.0.1\n    certificate-authority: client.crt\n    insecure-skip-tls-verify: true",
                                user: "    token: abc.def").write(toFile: directory + "/config", atomically: true, encoding: .utf8)
            let fromFile = try KubernetesConnection.load(environment: ["KUBECONFIG": directory + "/config:/other"], home: "/nowhere")
            #expect(fromFile.credentials == .token("abc.def") && fromFile.insecureSkipTLSVerify)
            #expect(fromFile.certificateAuthorityPEM == Array(certificate.utf8))

            // ~/.kube/config
            try FileManager.default.createDirectory(atPath: directory + "/.kube", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: directory + "/config", toPath: directory + "/.kube/config")
            try FileManager.default.copyItem(atPath: directory + "/client.crt", toPath: directory + "/.kube/client.crt")
            #expect(try KubernetesConnection.load(environment: [:], home: directory).source == directory + "/.kube/config")

            // In a pod: the service account's files.
            let account = directory + "/serviceaccount"
            try FileManager.default.createDirectory(atPath: account, withIntermediateDirectories: true)
            try "pod-token\n".write(toFile: account + "/token", atomically: true, encoding: .utf8)
            try certificate.write(toFile: account + "/ca.crt", atomically: true, encoding: .utf8)
            try "envhub\n".write(toFile: account + "/namespace", atomically: true, encoding: .utf8)
            let inCluster = try KubernetesConnection.load(
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"], home: "/nowhere",
                serviceAccountDirectory: account)
            #expect(inCluster.server.absoluteString == "https://10.96.0.1:443")
            #expect(inCluster.credentials == .tokenFile(account + "/token") && inCluster.namespace == "envhub")
        }
    }

    @Test func brokenConfigurationsSayWhatIsWrong() throws {
        try Self.withDirectory { directory in
            let cases: [(config: String, says: String)] = [
                ("not: [yaml", "is not YAML"),
                ("- a list", "no mapping at the top"),
                (Self.kubeconfig(cluster: "    server: https://x", user: "    token: t", context: ""), "has no current-context"),
                (Self.kubeconfig(cluster: "    server: https://x", user: "    token: t", context: "other"), "has no context named 'other'"),
                (Self.kubeconfig(cluster: "    insecure-skip-tls-verify: true", user: "    token: t"), "cluster 'c' has no valid server URL"),
                (Self.kubeconfig(cluster: "    server: https://x\n    certificate-authority: missing.crt", user: "    token: t"),
                 "certificate-authority of cluster 'c' (\(directory)/missing.crt) cannot be read"),
                (Self.kubeconfig(cluster: "    server: https://x\n    certificate-authority-data: '%%%'", user: "    token: t"),
                 "certificate-authority-data of cluster 'c' is not base64"),
                (Self.kubeconfig(cluster: "    server: https://x", user: "    client-certificate-data: YWJj"), "has a client certificate but no client-key"),
                (Self.kubeconfig(cluster: "    server: https://x", user: "    exec: {command: aws}"), "uses an exec or auth-provider plugin"),
                (Self.kubeconfig(cluster: "    server: https://x", user: "    tokenFile: gone"), "tokenFile of user 'u'"),
            ]
            for (config, says) in cases {
                try config.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
                #expect {
                    _ = try KubernetesConnection.load(environment: ["KUBECONFIG": directory + "/config"], home: directory)
                } throws: { error in
                    "\(error)".hasPrefix("Kubernetes configuration from KUBECONFIG=\(directory)/config ") && "\(error)".contains(says)
                }
            }
            #expect(throws: KubernetesConfigError("KUBECONFIG_BASE64", "is not base64-encoded UTF-8 text")) {
                _ = try KubernetesConnection.load(environment: ["KUBECONFIG_BASE64": "***"], home: directory)
            }
            #expect(throws: KubernetesConfigError("KUBECONFIG=/no/such/file", "cannot be read")) {
                _ = try KubernetesConnection.load(environment: ["KUBECONFIG": "/no/such/file"], home: directory)
            }
            #expect {
                _ = try KubernetesConnection.load(environment: [:], home: directory)
            } throws: { "\($0)".contains("has no Kubernetes configuration") }
            #expect {
                _ = try KubernetesConnection.load(environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1"], home: directory,
                                                  serviceAccountDirectory: directory + "/none")
            } throws: { "\($0)" == "Kubernetes configuration from in-cluster no service account token at \(directory)/none/token" }
            let badKey = KubernetesConnection(server: URL(string: "https://x")!, credentials: .clientCertificate(
                certificatePEM: Array("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".utf8), keyPEM: []), source: "test")
            #expect { _ = try KubernetesClient.tlsConfiguration(badKey) } throws: { "\($0)".contains("not valid PEM") }
        }
    }

    /// A projected service account token rotates: the next request carries the new one.
    @Test func aRotatedTokenIsReadAgain() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "first".write(toFile: file, atomically: true, encoding: .utf8)
        let api = FakeKubernetesAPI()
        try await api.run { port in
            let client = try KubernetesClient(connection: KubernetesConnection(
                server: URL(string: "http://127.0.0.1:\(port)")!, credentials: .tokenFile(file), source: "test"))
            _ = try await client.get("/api/v1/namespaces/a")
            try "second".write(toFile: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: file)
            _ = try await client.get("/api/v1/namespaces/a")
            try await client.shutdown()
        }
        #expect(api.authorizations == ["Bearer first", "Bearer second"])
    }
}
