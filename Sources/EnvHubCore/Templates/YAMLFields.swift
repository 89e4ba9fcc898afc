import Yams

/// A YAML mapping being read field by field; every problem becomes a `TemplateError` that
/// names the file, the line and the dotted field path (`components[0].port`).
struct YAMLFields {
    let file: String
    let path: String
    let line: Int
    private let entries: [(key: String, value: Node)]

    init(_ node: Node, file: String, path: String) throws(TemplateError) {
        self.file = file
        self.path = path
        self.line = node.mark?.line ?? 1
        guard case .mapping(let mapping) = node else {
            throw TemplateError(file: file, line: node.mark?.line ?? 1, field: path.isEmpty ? "(document)" : path, message: "must be a mapping")
        }
        var entries: [(key: String, value: Node)] = []
        for (key, value) in mapping {
            guard let name = key.string else {
                throw TemplateError(file: file, line: key.mark?.line ?? 1, field: path, message: "keys must be strings")
            }
            entries.append((name, value))
        }
        self.entries = entries
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ message: String) -> TemplateError {
        TemplateError(file: file, line: node(key)?.mark?.line ?? line, field: fieldPath(key), message: message)
    }

    func node(_ key: String) -> Node? { entries.first { $0.key == key }?.value }

    /// Fails on keys the format does not know, so a typo never passes silently.
    func rejectUnknownKeys(_ known: Set<String>) throws(TemplateError) {
        if let unknown = entries.first(where: { !known.contains($0.key) }) {
            throw TemplateError(
                file: file, line: unknown.value.mark?.line ?? line, field: fieldPath(unknown.key),
                message: "unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ key: String) throws(TemplateError) -> String? {
        guard let node = node(key) else { return nil }
        guard case .scalar(let scalar) = node else { throw error(key, "must be a string") }
        return scalar.string
    }

    func requiredString(_ key: String) throws(TemplateError) -> String {
        guard let value = try string(key) else { throw error(key, "is required") }
        if value.isEmpty { throw error(key, "must not be empty") }
        return value
    }

    func int(_ key: String) throws(TemplateError) -> Int? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, let value = node.int else { throw error(key, "must be an integer") }
        return value
    }

    func bool(_ key: String) throws(TemplateError) -> Bool? {
        guard let node = node(key) else { return nil }
        guard case .scalar = node, let value = node.bool else { throw error(key, "must be true or false") }
        return value
    }

    func mapping(_ key: String) throws(TemplateError) -> YAMLFields? {
        guard let node = node(key) else { return nil }
        return try YAMLFields(node, file: file, path: fieldPath(key))
    }

    func sequence(_ key: String) throws(TemplateError) -> [Node]? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let sequence) = node else { throw error(key, "must be a list") }
        return Array(sequence)
    }

    func stringList(_ key: String) throws(TemplateError) -> [String]? {
        guard let items = try sequence(key) else { return nil }
        var result: [String] = []
        for item in items {
            guard case .scalar(let scalar) = item else { throw error(key, "must be a list of strings") }
            result.append(scalar.string)
        }
        return result
    }

    func stringMap(_ key: String) throws(TemplateError) -> [String: String]? {
        guard let fields = try mapping(key) else { return nil }
        var result: [String: String] = [:]
        for (name, value) in fields.entries {
            guard case .scalar(let scalar) = value else { throw fields.error(name, "must be a string") }
            result[name] = scalar.string
        }
        return result
    }

    var keys: [String] { entries.map(\.key) }
}
