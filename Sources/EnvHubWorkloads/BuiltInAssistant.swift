import Foundation

/// The agent's answers when no model is configured: a handful of commands, streamed word
/// by word (`AGENT_TOKEN_DELAY_MS` apart, 40 by default) so that clients see a real stream.
struct BuiltInAssistant: ReplySource {
    let environment: WorkloadEnvironment
    let tokenDelay: Duration

    static let help = """
        I am the built-in agent of this project, not a language model. I understand: \
        help, time, echo <text>, whoami, env. Set AGENT_LLM_URL to talk to a real model.
        """

    func answer(_ message: String, now: Date = Date()) -> String {
        let trimmed = message.trimmingCharacters(in: .whitespacesAndNewlines)
        let command = trimmed.split(separator: " ", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        switch command {
        case "help": return Self.help
        case "time": return "It is \(ISO8601DateFormatter().string(from: now))."
        case "echo":
            let text = trimmed.dropFirst(4).trimmingCharacters(in: .whitespaces)
            return text.isEmpty ? "Nothing to echo." : text
        case "whoami":
            return "You are user \(environment.userID), talking to the agent of project \(environment.projectID)."
        case "env":
            // Only what envhub sets, never the rest of the process environment.
            let names = ["USER_ID", "PROJECT_ID", "BASE_PATH", "PORT", "AGENT_NAME"]
            return names.compactMap { name in environment.variables[name].map { "\(name)=\($0)" } }.joined(separator: " ")
        default:
            return "I only understand help, time, echo, whoami and env; I am not a language model. Try help."
        }
    }

    func reply(to message: String, history: [ChatTurn]) async throws -> any AsyncSequence<String, any Error> {
        PacedWords(words: Self.tokens(answer(message)), delay: tokenDelay)
    }

    /// Words with their following space, so that the tokens joined give the answer back.
    static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == " " {
                tokens.append(current)
                current = ""
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}

/// Words handed out one at a time, `delay` apart.
struct PacedWords: AsyncSequence, Sendable {
    typealias Element = String
    let words: [String]
    let delay: Duration

    struct AsyncIterator: AsyncIteratorProtocol {
        let words: [String]
        let delay: Duration
        var index = 0

        mutating func next() async throws -> String? {
            guard index < words.count else { return nil }
            if index > 0 && delay > .zero { try await Task.sleep(for: delay) }
            defer { index += 1 }
            return words[index]
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(words: words, delay: delay) }
}
