import ArgumentParser
import EnvHubCore
import EnvHubKubernetes
import EnvHubRuntime
import EnvHubServer
import EnvHubStore
import Foundation

struct ProjectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project", abstract: "Look at projects in the store.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List projects, of one user or of everyone.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this user's projects.") var user: String?

        func run() async throws {
            let owner = try user.map { raw in try validated { () throws(EnvHubError) in try UserName(validating: raw, field: "user") } }
            let projects = try await withStore(try store.config()) { store in
                if let owner { try await store.projects(ownedBy: owner) } else { try await store.allProjects() }
            }
            print("USER/PROJECT".padding(toLength: 50, withPad: " ", startingAt: 0) + "TEMPLATE  STATE")
            for project in projects {
                print("\(project.owner)/\(project.name)".padding(toLength: 50, withPad: " ", startingAt: 0)
                      + project.template.padding(toLength: 10, withPad: " ", startingAt: 0) + project.state.rawValue)
            }
        }
    }
}

struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template", abstract: "Look at the templates catalogue.", subcommands: [List.self, Render.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the built-in templates and those of ENVHUB_TEMPLATES_DIR.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let config = try store.config()
            let catalog = try TemplateLoader.load(directory: config.templatesDirectory)
            print("NAME".padding(toLength: 12, withPad: " ", startingAt: 0) + "COMPONENTS".padding(toLength: 14, withPad: " ", startingAt: 0) + "TITLE")
            for template in catalog.templates {
                print(template.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + template.components.map(\.name).joined(separator: ",").padding(toLength: 14, withPad: " ", startingAt: 0)
                      + template.title)
            }
        }
    }

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the Kubernetes objects of a project made from a template, as YAML.",
            discussion: """
                The objects the Kubernetes runtime applies when USER activates PROJECT: the user's \
                namespace with its NetworkPolicy, ResourceQuota and LimitRange, then the project's \
                Secret (a fresh random value here) and each component's Service, Deployment or \
                StatefulSet and HorizontalPodAutoscaler.
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The template's name.") var name: String
        @Option(help: "The owner's user name.") var user: String
        @Option(help: "The project's name.") var project: String
        @Flag(help: "Render the workloads scaled to zero, as for an inactive project.") var inactive = false
        @Option(help: "The namespace of the hub's pods (only they may reach environments).") var hubNamespace = "envhub"

        func run() async throws {
            let config = try store.config()
            let catalog = try TemplateLoader.load(directory: config.templatesDirectory)
            guard let template = catalog.template(named: name) else {
                throw ValidationError("no template named '\(name)'; `envhub template list` shows them")
            }
            let owner = try UserName(validating: user, field: "--user")
            let projectName = try ProjectName(validating: project, field: "--project")
            var settings = KubernetesSettings()
            settings.hubNamespace = hubNamespace
            let objects = EnvironmentObjects(
                spec: EnvironmentSpec(projectID: UUID().uuidString.lowercased(), owner: owner, project: projectName, template: template,
                                      secret: ProjectSecret.random()),
                settings: settings)
            print(objects.all(active: !inactive).map(\.yaml).joined(separator: "---\n"), terminator: "")
        }
    }
}
