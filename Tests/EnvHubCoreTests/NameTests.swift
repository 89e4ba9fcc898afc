import EnvHubCore
import Testing

@Suite struct NameTests {
    @Test(arguments: ["a", "alice", "bob-2", "x1", String(repeating: "a", count: 32)])
    func acceptsDNSLabels(_ name: String) {
        #expect(UserName(rawValue: name)?.rawValue == name)
    }

    @Test(arguments: [
        ("", "must not be empty"),
        ("Alice", "may contain only lowercase letters, digits and '-'"),
        ("al_ice", "may contain only lowercase letters, digits and '-'"),
        ("1abc", "must start with a lowercase letter"),
        ("-abc", "must start with a lowercase letter"),
        ("abc-", "must end with a letter or digit"),
        ("a.b", "may contain only lowercase letters, digits and '-'"),
        ("ünï", "may contain only lowercase letters, digits and '-'"),
        (String(repeating: "a", count: 33), "must be at most 32 characters"),
    ])
    func rejectsOthersSayingWhy(_ name: String, _ problem: String) {
        #expect(UserName(rawValue: name) == nil)
        #expect(DNSLabel.problem(with: name, maxLength: 32) == problem)
        #expect(throws: EnvHubError.invalidField("username", "username \(problem)")) {
            try UserName(validating: name, field: "username")
        }
    }

    @Test func projectNamesMayBeFortyCharacters() {
        #expect(ProjectName(rawValue: String(repeating: "p", count: 40)) != nil)
        #expect(ProjectName(rawValue: String(repeating: "p", count: 41)) == nil)
    }
}

@Suite struct DomainRuleTests {
    @Test func environmentStatesMoveOnlyAlongTheLifecycle() {
        #expect(EnvironmentState.inactive.canMove(to: .starting))
        #expect(EnvironmentState.starting.canMove(to: .active))
        #expect(EnvironmentState.active.canMove(to: .stopping))
        #expect(EnvironmentState.stopping.canMove(to: .inactive))
        #expect(!EnvironmentState.inactive.canMove(to: .active))
        #expect(!EnvironmentState.stopping.canMove(to: .starting))
        #expect(!EnvironmentState.failed.canMove(to: .active))
        #expect(EnvironmentState.active.canMove(to: .starting), "a crashed environment restarts")
        #expect(EnvironmentState.deleting.successors.isEmpty)
        // From every state but deleting there is a way back to inactive.
        for state in EnvironmentState.allCases where state != .deleting {
            var reached: Set<EnvironmentState> = [state]
            var frontier = [state]
            while let next = frontier.popLast() {
                for successor in next.successors where reached.insert(successor).inserted { frontier.append(successor) }
            }
            #expect(reached.contains(.inactive), "\(state)")
        }
    }

    @Test func profilesCheckLengthsAndEmail() throws {
        try Profile(displayName: "Ada", bio: "", email: "ada@example.org").validate()
        #expect(throws: EnvHubError.self) { try Profile(email: "not-an-email").validate() }
        #expect(throws: EnvHubError.self) { try Profile(email: "a b@example.org").validate() }
        #expect(throws: EnvHubError.self) { try Profile(displayName: String(repeating: "x", count: 101)).validate() }
        #expect(throws: EnvHubError.self) { try Profile(bio: String(repeating: "x", count: 2_001)).validate() }
    }

    @Test func passwordsNeedEightCharactersAndFitBcrypt() throws {
        try PasswordPolicy.validate("eight888")
        #expect(throws: EnvHubError.self) { try PasswordPolicy.validate("seven77") }
        #expect(throws: EnvHubError.self) { try PasswordPolicy.validate(String(repeating: "é", count: 40)) }
    }
}
