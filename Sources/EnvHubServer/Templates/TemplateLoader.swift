import EnvHubCore
import Foundation

/// Reads the built-in templates shipped with the binary and those of a directory.
/// Any malformed file stops start-up with `file:line: field: message`.
public enum TemplateLoader {
    public static func load(directory: String?) throws -> TemplateCatalog {
        var catalog = TemplateCatalog()
        guard let builtIn = Bundle.module.url(forResource: "templates", withExtension: nil) else {
            throw TemplateError(file: "(built-in)", line: 0, field: "(bundle)", message: "the built-in templates are missing from this build")
        }
        for template in try loadFiles(in: builtIn, label: { "built-in/\($0)" }) { catalog.add(template) }
        if let directory, !directory.isEmpty {
            let url = URL(fileURLWithPath: directory)
            for template in try loadFiles(in: url, label: { url.appendingPathComponent($0).path }) { catalog.add(template) }
        }
        return catalog
    }

    private static func loadFiles(in directory: URL, label: (String) -> String) throws -> [Template] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw TemplateError(file: directory.path, line: 0, field: "(directory)", message: "cannot be read: \(error.localizedDescription)")
        }
        var templates: [Template] = []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let file = label(name)
            let text: String
            do {
                text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            } catch {
                throw TemplateError(file: file, line: 0, field: "(file)", message: "cannot be read: \(error.localizedDescription)")
            }
            let template = try TemplateParser.parse(yaml: text, file: file)
            if templates.contains(where: { $0.name == template.name }) {
                throw TemplateError(file: file, line: 1, field: "name", message: "template \(template.name) is defined twice in \(directory.path)")
            }
            templates.append(template)
        }
        return templates
    }
}
