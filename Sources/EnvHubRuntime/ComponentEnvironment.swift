import EnvHubCore
import Foundation

/// The environment a component starts with. Only a few of the hub's own variables pass on
/// (never its secrets such as ENVHUB_DATABASE_URL); then the template's, with placeholders
/// filled in; then what envhub always sets.
enum ComponentEnvironment {
    static let inherited = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]

    static func variables(
        for component: Component, at index: Int, ports: [Int], spec: EnvironmentSpec, placeholders: Placeholders,
        volume: URL?, base: [String: String]
    ) -> [String: String] {
        var variables = base.filter { inherited.contains($0.key) }
        // Siblings by name: a component `db` is at DB_URL (http://127.0.0.1:PORT) and DB_PORT.
        for (siblingIndex, sibling) in spec.template.components.enumerated() where siblingIndex != index {
            let prefix = sibling.name.uppercased().replacingOccurrences(of: "-", with: "_")
            variables["\(prefix)_PORT"] = String(ports[siblingIndex])
            variables["\(prefix)_URL"] = "http://127.0.0.1:\(ports[siblingIndex])"
        }
        // The template's own (such as DATABASE_URL) win over the sibling defaults.
        for (key, value) in component.env { variables[key] = placeholders.fill(value) }
        variables["USER_ID"] = spec.owner.rawValue
        variables["PROJECT_ID"] = spec.project.rawValue
        variables["BASE_PATH"] = spec.basePath
        variables["PORT"] = String(ports[index])
        variables["HOST"] = "127.0.0.1"
        if let volume { variables["VOLUME_DIR"] = volume.path }
        return variables
    }
}

/// The project's `{{secret}}`: 32 random bytes in hex, made at the first start and kept in
/// the project's directory (mode 0600) until the project is deleted.
public enum ProjectSecret {
    static func read(in directory: URL) throws -> String {
        let file = directory.appendingPathComponent("secret")
        if let text = try? String(contentsOf: file, encoding: .utf8), text.count == 64 { return text }
        let secret = random()
        guard FileManager.default.createFile(atPath: file.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw RuntimeError("cannot write the project's secret to \(file.path)")
        }
        return secret
    }

    /// A fresh secret: 32 random bytes in hex.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }
}
