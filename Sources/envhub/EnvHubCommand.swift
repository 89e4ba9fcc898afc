import ArgumentParser

@main
struct EnvHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envhub",
        abstract: "A self-hosted, multi-user environment hub.",
        discussion: "Every option can also be set with its ENVHUB_* environment variable (shown in each command's help); a flag given on the command line wins.",
        subcommands: [Serve.self, Migrate.self, UserCommand.self, ProjectCommand.self, TemplateCommand.self, WorkloadCommand.self],
        defaultSubcommand: nil)
}
