import Foundation
import Yams

/// Where the Kubernetes API is and how to prove who we are, found the way kubectl and the
/// client libraries find it, first match wins:
///
/// 1. `KUBECONFIG_BASE64`: a whole kubeconfig, base64-encoded (handy for one secret value);
/// 2. `KUBECONFIG`: a kubeconfig file (the first, when it lists several);
/// 3. `~/.kube/config`;
/// 4. in a pod: the service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token, CA and
///    namespace under /var/run/secrets/kubernetes.io/serviceaccount; the token is read
///    again when the file changes, as projected tokens rotate).
///
/// A kubeconfig is read at its `current-context`: the cluster's `server`,
/// `certificate-authority(-data)` and `insecure-skip-tls-verify`, the user's `token`,
/// `tokenFile` or `client-certificate(-data)` + `client-key(-data)`, and the namespace.
/// Anything missing or unreadable is an error that says where and what.
public struct KubernetesConnection: Sendable, Equatable {
    public enum Credentials: Sendable, Equatable {
        case none
        case token(String)
        /// Read at each request when the file has changed.
        case tokenFile(String)
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    public var server: URL
    public var credentials: Credentials
    /// PEM certificates to trust; nil: the system's.
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    public var namespace: String?
    /// Where this came from, for messages: "KUBECONFIG_BASE64", a file path, "in-cluster".
    public var source: String

    public init(
        server: URL, credentials: Credentials, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
        namespace: String? = nil, source: String
    ) {
        self.server = server
        self.credentials = credentials
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.namespace = namespace
        self.source = source
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The configuration, in the order above.
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String = NSHomeDirectory(),
        serviceAccountDirectory: String = serviceAccountDirectory
    ) throws -> KubernetesConnection {
        if let encoded = environment["KUBECONFIG_BASE64"], !encoded.isEmpty {
            guard let data = Data(base64Encoded: encoded.trimmingCharacters(in: .whitespacesAndNewlines)),
                  let text = String(data: data, encoding: .utf8) else {
                throw KubernetesConfigError("KUBECONFIG_BASE64", "is not base64-encoded UTF-8 text")
            }
            return try parse(kubeconfig: text, source: "KUBECONFIG_BASE64", baseDirectory: FileManager.default.currentDirectoryPath)
        }
        if let paths = environment["KUBECONFIG"], let path = paths.split(separator: ":").first.map(String.init), !path.isEmpty {
            return try file(path, source: "KUBECONFIG=\(path)")
        }
        let home = home + "/.kube/config"
        if FileManager.default.fileExists(atPath: home) { return try file(home, source: home) }
        if let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty {
            return try inCluster(host: host, port: environment["KUBERNETES_SERVICE_PORT"] ?? "443", directory: serviceAccountDirectory)
        }
        throw KubernetesConfigError(
            "the environment", "has no Kubernetes configuration: set KUBECONFIG_BASE64 or KUBECONFIG, create ~/.kube/config, or run in a pod")
    }

    static func file(_ path: String, source: String) throws -> KubernetesConnection {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KubernetesConfigError(source, "cannot be read")
        }
        return try parse(kubeconfig: text, source: source, baseDirectory: (path as NSString).deletingLastPathComponent)
    }

    static func inCluster(host: String, port: String, directory: String) throws -> KubernetesConnection {
        let token = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: token) else {
            throw KubernetesConfigError("in-cluster", "no service account token at \(token)")
        }
        guard let ca = FileManager.default.contents(atPath: directory + "/ca.crt") else {
            throw KubernetesConfigError("in-cluster", "no CA certificate at \(directory)/ca.crt")
        }
        let namespace = (try? String(contentsOfFile: directory + "/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host  // IPv6
        guard let server = URL(string: "https://\(hostPart):\(port)") else {
            throw KubernetesConfigError("in-cluster", "KUBERNETES_SERVICE_HOST/PORT do not make a URL")
        }
        return KubernetesConnection(server: server, credentials: .tokenFile(token), certificateAuthorityPEM: Array(ca),
                                    namespace: namespace, source: "in-cluster")
    }

    /// A kubeconfig document; relative file names are read from `baseDirectory`.
    public static func parse(kubeconfig: String, source: String, baseDirectory: String) throws -> KubernetesConnection {
        let document: Any?
        do {
            document = try Yams.load(yaml: kubeconfig)
        } catch {
            throw KubernetesConfigError(source, "is not YAML: \(error)")
        }
        guard let root = document as? [String: Any] else { throw KubernetesConfigError(source, "is not a kubeconfig (no mapping at the top)") }
        guard let current = root["current-context"] as? String, !current.isEmpty else {
            throw KubernetesConfigError(source, "has no current-context")
        }
        let context = try named(current, in: root, list: "contexts", item: "context", source: source)
        guard let clusterName = context["cluster"] as? String else {
            throw KubernetesConfigError(source, "context '\(current)' names no cluster")
        }
        let cluster = try named(clusterName, in: root, list: "clusters", item: "cluster", source: source)
        guard let serverText = cluster["server"] as? String, let server = URL(string: serverText), server.host != nil else {
            throw KubernetesConfigError(source, "cluster '\(clusterName)' has no valid server URL")
        }
        let read = { (field: String, owner: String) throws -> [UInt8] in
            try bytes(data: nil, file: field, baseDirectory: baseDirectory, what: owner, source: source)
        }
        var authority: [UInt8]?
        if let data = cluster["certificate-authority-data"] as? String {
            authority = try bytes(data: data, file: nil, baseDirectory: baseDirectory, what: "certificate-authority-data of cluster '\(clusterName)'", source: source)
        } else if let file = cluster["certificate-authority"] as? String {
            authority = try read(file, "certificate-authority of cluster '\(clusterName)'")
        }
        var credentials = Credentials.none
        if let userName = context["user"] as? String {
            let user = try named(userName, in: root, list: "users", item: "user", source: source)
            let what = "user '\(userName)'"
            if let token = user["token"] as? String {
                credentials = .token(token)
            } else if let tokenFile = user["tokenFile"] as? String {
                let path = tokenFile.hasPrefix("/") ? tokenFile : baseDirectory + "/" + tokenFile
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw KubernetesConfigError(source, "tokenFile of \(what) (\(path)) cannot be read")
                }
                credentials = .tokenFile(path)
            } else if user["client-certificate-data"] != nil || user["client-certificate"] != nil {
                let certificate = try bytes(data: user["client-certificate-data"] as? String, file: user["client-certificate"] as? String,
                                            baseDirectory: baseDirectory, what: "client-certificate of \(what)", source: source)
                guard user["client-key-data"] != nil || user["client-key"] != nil else {
                    throw KubernetesConfigError(source, "\(what) has a client certificate but no client-key(-data)")
                }
                let key = try bytes(data: user["client-key-data"] as? String, file: user["client-key"] as? String,
                                    baseDirectory: baseDirectory, what: "client-key of \(what)", source: source)
                credentials = .clientCertificate(certificatePEM: certificate, keyPEM: key)
            } else if user["exec"] != nil || user["auth-provider"] != nil {
                throw KubernetesConfigError(source, "\(what) uses an exec or auth-provider plugin, which envhub does not run; use a token or a client certificate")
            }
        }
        return KubernetesConnection(
            server: server, credentials: credentials, certificateAuthorityPEM: authority,
            insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] as? Bool ?? false,
            namespace: context["namespace"] as? String, source: source)
    }

    private static func named(_ name: String, in root: [String: Any], list: String, item: String, source: String) throws -> [String: Any] {
        let entries = root[list] as? [[String: Any]] ?? []
        guard let entry = entries.first(where: { $0["name"] as? String == name }) else {
            throw KubernetesConfigError(source, "has no \(item) named '\(name)' under \(list)")
        }
        guard let value = entry[item] as? [String: Any] else {
            throw KubernetesConfigError(source, "\(item) '\(name)' is empty")
        }
        return value
    }

    /// Base64 `data`, or else the contents of `file`.
    private static func bytes(data: String?, file: String?, baseDirectory: String, what: String, source: String) throws -> [UInt8] {
        if let data {
            guard let decoded = Data(base64Encoded: data.trimmingCharacters(in: .whitespacesAndNewlines)), !decoded.isEmpty else {
                throw KubernetesConfigError(source, "\(what) is not base64")
            }
            return Array(decoded)
        }
        guard let file else { throw KubernetesConfigError(source, "\(what) is missing") }
        let path = file.hasPrefix("/") ? file : baseDirectory + "/" + file
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw KubernetesConfigError(source, "\(what) (\(path)) cannot be read")
        }
        return Array(contents)
    }
}

/// What is wrong with the Kubernetes configuration, naming where it came from.
public struct KubernetesConfigError: Error, Equatable, CustomStringConvertible {
    public let source: String
    public let problem: String

    public init(_ source: String, _ problem: String) {
        self.source = source
        self.problem = problem
    }

    public var description: String { "Kubernetes configuration from \(source) \(problem)" }
}
