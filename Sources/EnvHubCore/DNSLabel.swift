/// The one place that validates names which may reach a runtime (process names, directories,
/// Kubernetes objects): RFC 1123 labels, lowercase letters, digits and '-', starting with a
/// letter and ending with a letter or digit.
public enum DNSLabel {
    /// Returns nil when `value` is a valid label of at most `maxLength` characters, otherwise
    /// a sentence saying what is wrong.
    public static func problem(with value: String, maxLength: Int) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.utf8.count > maxLength { return "must be at most \(maxLength) characters" }
        let bytes = value.utf8  // read in place: the gateway checks two names per request
        if bytes.contains(where: { !(isLowerLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-")) }) {
            return "may contain only lowercase letters, digits and '-'"
        }
        if let first = bytes.first, !isLowerLetter(first) { return "must start with a lowercase letter" }
        if bytes.last == UInt8(ascii: "-") { return "must end with a letter or digit" }
        return nil
    }

    private static func isLowerLetter(_ byte: UInt8) -> Bool { byte >= 97 && byte <= 122 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
}

/// A name that is a DNS-1123 label of bounded length. Conforming types only say their limit.
public protocol DNSLabelName: RawRepresentable<String>, Hashable, Sendable, Codable, CustomStringConvertible {
    static var maxLength: Int { get }
    init(unchecked rawValue: String)
}

extension DNSLabelName {
    public init?(rawValue: String) {
        guard DNSLabel.problem(with: rawValue, maxLength: Self.maxLength) == nil else { return nil }
        self.init(unchecked: rawValue)
    }

    /// Validates `value`, throwing a 400 that names `field`.
    public init(validating value: String, field: String) throws(EnvHubError) {
        if let problem = DNSLabel.problem(with: value, maxLength: Self.maxLength) {
            throw .invalidField(field, "\(field) \(problem)")
        }
        self.init(unchecked: value)
    }

    public init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer().decode(String.self)
        guard let name = Self(rawValue: value) else {
            let problem = DNSLabel.problem(with: value, maxLength: Self.maxLength) ?? "is invalid"
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
        self = name
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}

/// A user's login name: at most 32 characters, so it can name a Kubernetes namespace
/// (`envhub-{user}`) and a gateway path segment unchanged.
public struct UserName: DNSLabelName {
    public static let maxLength = 32
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
}

/// A project's name, unique per user: at most 40 characters, so that objects named after
/// it and a component still fit Kubernetes' 63-character limit.
public struct ProjectName: DNSLabelName {
    public static let maxLength = 40
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
}
