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

/// A project's `{{secret}}`: 32 random bytes in hex. The hub keeps one per project
/// (`EnvironmentSpec.secret`); a local project started by an earlier envhub kept its own in
/// its directory, and that one still wins, since its data (a database's password) depends on it.
public enum ProjectSecret {
    static func written(in directory: URL) -> String? {
        let text = try? String(contentsOf: directory.appendingPathComponent("secret"), encoding: .utf8)
        return text?.count == 64 ? text : nil
    }

    /// A fresh secret: 32 random bytes in hex.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }
}
