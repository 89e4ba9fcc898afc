import ArgumentParser
import EnvHubCore
import EnvHubServer
import EnvHubStore
import Foundation
import HummingbirdBcrypt

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage accounts in the store.",
        subcommands: [Add.self, List.self, Passwd.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name: lowercase letters, digits and '-', at most 32 characters.") var name: String
        @Flag(help: "Make the user an admin.") var admin = false
        @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input.")
        var passwordStdin = false

        func run() async throws {
            let userName = try validated { () throws(EnvHubError) in try UserName(validating: name, field: "user name") }
            let password = try readPassword(fromStdin: passwordStdin)
            let role: Role = admin ? .admin : .user
            let user = try await withStore(try store.config()) { store in
                try await AccountFactory(store: store).create(
                    username: userName.rawValue, password: password, role: role, displayName: nil, email: nil)
            }
            print("envhub: created \(user.role == .admin ? "admin" : "user") \(user.name)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let users = try await withStore(try store.config()) { try await $0.users() }
            print("NAME".padding(toLength: 34, withPad: " ", startingAt: 0) + "ROLE   CREATED")
            for user in users {
                print(user.name.rawValue.padding(toLength: 34, withPad: " ", startingAt: 0)
                      + user.role.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                      + ISO8601DateFormatter().string(from: user.createdAt))
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password and sign them out everywhere.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name.") var name: String
        @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input.")
        var passwordStdin = false

        func run() async throws {
            let userName = try validated { () throws(EnvHubError) in try UserName(validating: name, field: "user name") }
            let password = try readPassword(fromStdin: passwordStdin)
            let hash = Bcrypt.hash(password, cost: AppConfig().bcryptCost)
            let changed = try await withStore(try store.config()) { store in
                try await store.changePassword(of: userName, passwordHash: hash, keeping: nil, at: Date())
            }
            guard changed else { throw ValidationError("there is no user \(userName)") }
            print("envhub: changed the password of \(userName); their sessions were signed out")
        }
    }
}

/// Turns a domain validation error into a command-line one.
func validated<T>(_ body: () throws(EnvHubError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw ValidationError(error.message)
    }
}

/// The password from standard input's first line, or typed twice at a terminal.
func readPassword(fromStdin: Bool) throws -> String {
    let password: String
    if fromStdin {
        guard let line = readLine(strippingNewline: true) else { throw ValidationError("no password on standard input") }
        password = line
    } else {
        guard isatty(STDIN_FILENO) == 1 else {
            throw ValidationError("standard input is not a terminal; pass --password-stdin and pipe the password in")
        }
        guard let first = getpass("Password: ").map({ String(cString: $0) }),
              let second = getpass("Repeat password: ").map({ String(cString: $0) }) else {
            throw ValidationError("could not read the password")
        }
        guard first == second else { throw ValidationError("the passwords differ") }
        password = first
    }
    try validated { () throws(EnvHubError) in try PasswordPolicy.validate(password) }
    return password
}
