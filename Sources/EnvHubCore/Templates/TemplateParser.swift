import Foundation
import Yams

/// Reads and validates one template file. See `docs/templates.md` for the format.
public enum TemplateParser {
    public static func parse(yaml: String, file: String) throws(TemplateError) -> Template {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw TemplateError(file: file, line: 1, field: "(document)", message: "the file is empty")
            }
            root = node
        } catch let error as TemplateError {
            throw error
        } catch let error as YamlError {
            throw TemplateError(file: file, line: yamlErrorLine(error), field: "(syntax)", message: "\(error)")
        } catch {
            throw TemplateError(file: file, line: 1, field: "(syntax)", message: "\(error)")
        }
        let fields = try YAMLFields(root, file: file, path: "")
        try fields.rejectUnknownKeys([
            "name", "title", "description", "expose", "keepPrefix", "messagePath", "entryPath", "startTimeoutSeconds", "components",
        ])
        let name = try fields.requiredString("name")
        if let problem = DNSLabel.problem(with: name, maxLength: 40) { throw fields.error("name", "name \(problem)") }
        guard let componentNodes = try fields.sequence("components"), !componentNodes.isEmpty else {
            throw fields.error("components", "at least one component is required")
        }
        var components: [Component] = []
        for (index, node) in componentNodes.enumerated() {
            let component = try parseComponent(YAMLFields(node, file: file, path: "components[\(index)]"))
            if components.contains(where: { $0.name == component.name }) {
                throw TemplateError(file: file, line: node.mark?.line ?? 1, field: "components[\(index)].name",
                                    message: "component name '\(component.name)' is used twice")
            }
            components.append(component)
        }
        try checkPlaceholders(componentNodes, components, file: file)
        let expose = try fields.string("expose") ?? components[0].name
        if !components.contains(where: { $0.name == expose }) {
            throw fields.error("expose", "names no component (have: \(components.map(\.name).joined(separator: ", ")))")
        }
        let messagePath = try fields.string("messagePath")
        if let messagePath, !messagePath.hasPrefix("/") { throw fields.error("messagePath", "must start with '/'") }
        let entryPath = try fields.string("entryPath")
        if let entryPath, !entryPath.hasPrefix("/") { throw fields.error("entryPath", "must start with '/'") }
        if let entryPath, let used = Placeholders.names(in: entryPath), let bad = used.first(where: { $0 != "user" && $0 != "project" }) {
            throw fields.error("entryPath", "uses an unknown placeholder {{\(bad)}} (known: {{user}}, {{project}})")
        }
        let timeout = try fields.int("startTimeoutSeconds") ?? 60
        if !(1...3600).contains(timeout) { throw fields.error("startTimeoutSeconds", "must be between 1 and 3600") }
        return Template(
            name: name,
            title: try fields.requiredString("title"),
            description: try fields.string("description") ?? "",
            expose: expose,
            keepPrefix: try fields.bool("keepPrefix") ?? false,
            messagePath: messagePath,
            entryPath: entryPath,
            startTimeoutSeconds: timeout,
            components: components)
    }

    private static func parseComponent(_ fields: YAMLFields) throws(TemplateError) -> Component {
        try fields.rejectUnknownKeys([
            "name", "command", "image", "args", "port", "healthCheck", "healthPath", "env", "resources", "replicas", "autoscale",
            "volume",
        ])
        let name = try fields.requiredString("name")
        if let problem = DNSLabel.problem(with: name, maxLength: 20) { throw fields.error("name", "name \(problem)") }
        guard let command = try fields.stringList("command"), !command.isEmpty, !command[0].isEmpty else {
            throw fields.error("command", "is required: the program and its arguments for the local runtime")
        }
        let image = try fields.requiredString("image")
        guard let port = try fields.int("port") else { throw fields.error("port", "is required") }
        if !(1...65535).contains(port) { throw fields.error("port", "must be between 1 and 65535") }
        let health: HealthCheck
        switch try fields.string("healthCheck") ?? "http" {
        case "http":
            let path = try fields.string("healthPath") ?? "/health"
            if !path.hasPrefix("/") { throw fields.error("healthPath", "must start with '/'") }
            health = .http(path: path)
        case "tcp":
            if try fields.string("healthPath") != nil { throw fields.error("healthPath", "does not apply to healthCheck: tcp") }
            health = .tcp
        case let other:
            throw fields.error("healthCheck", "must be http or tcp, not '\(other)'")
        }
        let env = try fields.stringMap("env") ?? [:]
        if let bad = env.keys.sorted().first(where: { !isEnvName($0) }) {
            throw fields.error("env", "'\(bad)' is not a valid environment variable name")
        }
        if let reserved = env.keys.sorted().first(where: { reservedEnv.contains($0) }) {
            throw fields.error("env", "'\(reserved)' is set by envhub and cannot be overridden")
        }
        let replicas = try fields.int("replicas") ?? 1
        if !(0...100).contains(replicas) { throw fields.error("replicas", "must be between 0 and 100") }
        return Component(
            name: name, command: command, image: image, args: try fields.stringList("args") ?? [],
            port: port, health: health, env: env,
            resources: try parseResources(fields.mapping("resources")),
            replicas: replicas,
            autoscale: try parseAutoscale(fields.mapping("autoscale")),
            volume: try parseVolume(fields.mapping("volume")))
    }

    private static func parseResources(_ fields: YAMLFields?) throws(TemplateError) -> Resources {
        guard let fields else { return Resources() }
        try fields.rejectUnknownKeys(["requests", "limits"])
        return Resources(requests: try parseAmounts(fields.mapping("requests")), limits: try parseAmounts(fields.mapping("limits")))
    }

    private static func parseAmounts(_ fields: YAMLFields?) throws(TemplateError) -> ResourceAmounts {
        guard let fields else { return ResourceAmounts() }
        try fields.rejectUnknownKeys(["cpu", "memory"])
        let cpu = try fields.string("cpu")
        let memory = try fields.string("memory")
        if let cpu, !Quantity.isValid(cpu) { throw fields.error("cpu", "'\(cpu)' is not a quantity like 250m or 1") }
        if let memory, !Quantity.isValid(memory) { throw fields.error("memory", "'\(memory)' is not a quantity like 256Mi") }
        return ResourceAmounts(cpu: cpu, memory: memory)
    }

    private static func parseAutoscale(_ fields: YAMLFields?) throws(TemplateError) -> Autoscale? {
        guard let fields else { return nil }
        try fields.rejectUnknownKeys(["min", "max", "cpuPercent"])
        guard let min = try fields.int("min"), min >= 1 else { throw fields.error("min", "is required and must be at least 1") }
        guard let max = try fields.int("max"), max >= min else { throw fields.error("max", "is required and must be at least min") }
        guard let cpu = try fields.int("cpuPercent"), (1...100).contains(cpu) else {
            throw fields.error("cpuPercent", "is required and must be between 1 and 100")
        }
        return Autoscale(min: min, max: max, cpuPercent: cpu)
    }

    private static func parseVolume(_ fields: YAMLFields?) throws(TemplateError) -> Volume? {
        guard let fields else { return nil }
        try fields.rejectUnknownKeys(["size", "mountPath"])
        let size = try fields.requiredString("size")
        if !Quantity.isValid(size) { throw fields.error("size", "'\(size)' is not a quantity like 1Gi") }
        let mountPath = try fields.requiredString("mountPath")
        if !mountPath.hasPrefix("/") { throw fields.error("mountPath", "must be an absolute path") }
        return Volume(size: size, mountPath: mountPath)
    }

    /// Variables every environment gets from envhub itself.
    static let reservedEnv: Set<String> = ["USER_ID", "PROJECT_ID", "BASE_PATH", "PORT", "HOST", "VOLUME_DIR"]

    private static func isEnvName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || (first | 0x20) >= 97 && (first | 0x20) <= 122 else {
            return false
        }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20) >= 97 && ($0 | 0x20) <= 122 || ($0 >= 48 && $0 <= 57) }
    }

    /// Every `{{…}}` in env values must be one `Placeholders` knows, naming components that exist.
    private static func checkPlaceholders(_ nodes: [Node], _ components: [Component], file: String) throws(TemplateError) {
        let names = Set(components.map(\.name))
        for (index, component) in components.enumerated() {
            for key in component.env.keys.sorted() {
                let used = Placeholders.names(in: component.env[key] ?? "")
                let unknown = used == nil ? "an unclosed {{" : used?.first { name in
                    if ["user", "project", "secret"].contains(name) { return false }
                    guard let reference = Placeholders.endpointReference(name) else { return true }
                    return !names.contains(reference.component)
                }.map { "{{\($0)}}" }
                if let unknown {
                    throw try YAMLFields(nodes[index], file: file, path: "components[\(index)]").error(
                        "env", "\(key) uses an unknown placeholder \(unknown) (known: {{user}}, {{project}}, {{secret}}, "
                            + "{{COMPONENT.host}}, {{COMPONENT.port}} for components \(names.sorted().joined(separator: ", ")))")
                }
            }
        }
    }

    private static func yamlErrorLine(_ error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        case .duplicatedKeysInMapping(_, let context): context.mark.line
        default: 1
        }
    }
}

/// Kubernetes resource quantities: a decimal number with an optional SI or binary suffix.
enum Quantity {
    static func isValid(_ text: String) -> Bool {
        let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", ""]
        for suffix in suffixes where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
               number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != "." {
                return true
            }
        }
        return false
    }
}
