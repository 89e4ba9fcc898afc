import ArgumentParser
import EnvHubKubernetes
import Foundation
import Logging

/// `--runtime`: where `serve` runs environments. The Kubernetes runtime is checked before the
/// hub starts: its configuration must load and the API server must answer, or `serve` exits
/// with what is wrong.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .customLong("runtime"), help: "local (processes on this machine) or kubernetes (objects in the cluster that KUBECONFIG_BASE64, KUBECONFIG, ~/.kube/config or the pod's service account names). Env: ENVHUB_RUNTIME. Default: local")
    var runtime: String?

    @Option(name: .customLong("kubernetes-hub-namespace"), help: "With --runtime kubernetes: the namespace of the hub's pods, which alone may connect to environments. Env: ENVHUB_KUBERNETES_HUB_NAMESPACE. Default: the configuration's namespace (in a pod, its service account's), else envhub")
    var hubNamespace: String?

    /// Nil for the local runtime, which the hub builds itself; the caller shuts down the
    /// Kubernetes runtime's client when the hub has stopped.
    func make(logger: Logger) async throws -> KubernetesRuntime? {
        let env = ProcessInfo.processInfo.environment
        switch (runtime ?? env["ENVHUB_RUNTIME"] ?? "local").lowercased() {
        case "local": return nil
        case "kubernetes": return try await kubernetes(env, logger: logger)
        case let other: throw ValidationError("runtime '\(other)' is not local or kubernetes")
        }
    }

    private func kubernetes(_ env: [String: String], logger: Logger) async throws -> KubernetesRuntime {
        let connection = try KubernetesConnection.load()
        var retry = KubernetesClient.RetryPolicy()
        retry.attempts = 3
        retry.timeout = .seconds(10)
        let probe = try KubernetesClient(connection: connection, retry: retry)
        let version: JSONValue?
        do {
            version = try await probe.get("/version")
            try? await probe.shutdown()
        } catch {
            try? await probe.shutdown()
            throw RuntimeStartError("the Kubernetes API server at \(connection.server.absoluteString) (configuration from \(connection.source)) did not answer: \(error)")
        }
        guard let gitVersion = version?["gitVersion"]?.string else {
            throw RuntimeStartError("\(connection.server.absoluteString) (configuration from \(connection.source)) does not answer /version as a Kubernetes API server does")
        }
        var settings = KubernetesSettings()
        settings.hubNamespace = hubNamespace ?? env["ENVHUB_KUBERNETES_HUB_NAMESPACE"] ?? connection.namespace ?? settings.hubNamespace
        logger.info("environments run on Kubernetes", metadata: [
            "server": "\(connection.server.absoluteString)", "version": "\(gitVersion)", "configuration": "\(connection.source)",
            "hub.namespace": "\(settings.hubNamespace)",
        ])
        return KubernetesRuntime(client: try KubernetesClient(connection: connection), settings: settings, logger: logger)
    }
}

/// Why `serve` cannot start its runtime, as the one line it prints.
struct RuntimeStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
