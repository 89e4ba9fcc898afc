import Foundation

/// The `{{…}}` placeholders a template's values may use, filled in when an environment starts:
/// - `{{user}}`, `{{project}}`: the owner's and the project's names;
/// - `{{secret}}`: a random secret of the project, the same at every start and gone when the
///   project is deleted (for a database password shared by two components);
/// - `{{NAME.host}}`, `{{NAME.port}}`: where sibling component NAME listens (locally
///   127.0.0.1 and its port; on Kubernetes its Service's name and port);
/// - `{{envhub}}`, in `command` only: the running envhub binary.
public struct Placeholders: Sendable {
    public var user: String
    public var project: String
    public var secret: String
    public var endpoints: [String: (host: String, port: Int)]
    public var envhub: String?

    public init(user: String, project: String, secret: String, endpoints: [String: (host: String, port: Int)], envhub: String? = nil) {
        self.user = user
        self.project = project
        self.secret = secret
        self.endpoints = endpoints
        self.envhub = envhub
    }

    /// `text` with every placeholder this knows replaced; unknown ones stay as written (the
    /// template parser refuses them, so none reach here from a loaded template).
    public func fill(_ text: String) -> String {
        guard text.contains("{{") else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            result += rest[..<open.lowerBound]
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            result += value(of: name) ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    private func value(of name: String) -> String? {
        switch name {
        case "user": return user
        case "project": return project
        case "secret": return secret
        case "envhub": return envhub
        default:
            guard let (component, field) = Self.endpointReference(name), let endpoint = endpoints[component] else { return nil }
            return field == "host" ? endpoint.host : String(endpoint.port)
        }
    }

    /// The placeholder names in `text`, or nil when a `{{` is never closed.
    public static func names(in text: String) -> [String]? {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            guard let close = rest[open.upperBound...].range(of: "}}") else { return nil }
            names.append(rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces))
            rest = rest[close.upperBound...]
        }
        return names
    }

    /// `("db", "port")` for `db.port`; nil for anything else.
    public static func endpointReference(_ name: String) -> (component: String, field: String)? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1] == "host" || parts[1] == "port", !parts[0].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}
