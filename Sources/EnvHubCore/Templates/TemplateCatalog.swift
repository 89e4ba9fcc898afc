/// The templates a hub offers, by name: built-in ones first, then those of
/// `ENVHUB_TEMPLATES_DIR`, which may replace a built-in one of the same name.
public struct TemplateCatalog: Sendable {
    public private(set) var templates: [Template]

    public init(_ templates: [Template] = []) {
        self.templates = []
        for template in templates { add(template) }
    }

    /// Adds `template`, replacing one of the same name.
    public mutating func add(_ template: Template) {
        if let index = templates.firstIndex(where: { $0.name == template.name }) {
            templates[index] = template
        } else {
            templates.append(template)
        }
    }

    public func template(named name: String) -> Template? {
        templates.first { $0.name == name }
    }
}
