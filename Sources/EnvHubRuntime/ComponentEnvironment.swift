import EnvHubCore

/// The environment a component starts with. Only a few of the hub's own variables pass on
/// (never its secrets such as ENVHUB_DATABASE_URL); then the template's, with `{{user}}` and
/// `{{project}}` filled in; then what envhub always sets.
enum ComponentEnvironment {
    static let inherited = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]

    static func variables(
        for component: Component, at index: Int, ports: [Int], spec: EnvironmentSpec, base: [String: String]
    ) -> [String: String] {
        var variables = base.filter { inherited.contains($0.key) }
        for (key, value) in component.env { variables[key] = substitute(value, spec: spec, envhub: nil) }
        // Siblings by name: a component `db` is at DB_URL (http://127.0.0.1:PORT) and DB_PORT.
        for (siblingIndex, sibling) in spec.template.components.enumerated() where siblingIndex != index {
            let prefix = sibling.name.uppercased().replacingOccurrences(of: "-", with: "_")
            variables["\(prefix)_PORT"] = String(ports[siblingIndex])
            variables["\(prefix)_URL"] = "http://127.0.0.1:\(ports[siblingIndex])"
        }
        variables["USER_ID"] = spec.owner.rawValue
        variables["PROJECT_ID"] = spec.project.rawValue
        variables["BASE_PATH"] = spec.basePath
        variables["PORT"] = String(ports[index])
        variables["HOST"] = "127.0.0.1"
        return variables
    }

    /// Fills in `{{user}}`, `{{project}}` and, in commands, `{{envhub}}`. The values are
    /// validated names (or the hub's own path), and each lands in one argv element: nothing
    /// is ever parsed by a shell.
    static func substitute(_ text: String, spec: EnvironmentSpec, envhub: String?) -> String {
        var result = text.replacingOccurrences(of: "{{user}}", with: spec.owner.rawValue)
            .replacingOccurrences(of: "{{project}}", with: spec.project.rawValue)
        if let envhub { result = result.replacingOccurrences(of: "{{envhub}}", with: envhub) }
        return result
    }
}
