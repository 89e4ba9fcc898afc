import EnvHubCore
import Hummingbird

/// The templates catalogue, for signed-in users choosing what to create.
struct TemplateController {
    let templates: TemplateCatalog

    struct TemplateList: Encodable {
        let templates: [Template]
    }

    func addRoutes(to routes: HubRoutes) {
        routes.get("/api/templates") { _, context in
            _ = try context.requireIdentity()
            return try .json(TemplateList(templates: templates.templates))
        }
    }
}
