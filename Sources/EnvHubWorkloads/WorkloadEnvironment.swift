import Foundation

/// What every built-in workload reads from its environment: where to listen, under which
/// path prefix, and for whom. envhub sets these for each component it starts.
public struct WorkloadEnvironment: Sendable {
    public var host: String
    public var port: Int
    /// The gateway prefix, such as `/u/alice/web`. Requests arrive with it stripped (the
    /// gateway's default) or kept; the workloads answer both.
    public var basePath: String
    public var userID: String
    public var projectID: String
    public var variables: [String: String]

    public init(_ variables: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.variables = variables
        host = variables["HOST"] ?? "127.0.0.1"
        guard let port = Int(variables["PORT"] ?? "8080"), (0...65535).contains(port) else {
            throw WorkloadError("PORT must be a number between 0 and 65535, not '\(variables["PORT"] ?? "")'")
        }
        self.port = port
        var basePath = variables["BASE_PATH"] ?? ""
        while basePath.hasSuffix("/") { basePath.removeLast() }
        if !basePath.isEmpty && !basePath.hasPrefix("/") { basePath = "/" + basePath }
        self.basePath = basePath
        userID = variables["USER_ID"] ?? "unknown"
        projectID = variables["PROJECT_ID"] ?? "unknown"
    }
}

/// A workload that cannot start, with a sentence saying why.
public struct WorkloadError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
