import Foundation
import Testing
@testable import EnvHubServer

@Suite struct JSONWriterTests {
    struct Inner: Encodable, Equatable {
        let flag: Bool
        let ratio: Double
    }

    struct Sample: Encodable {
        let text: String
        let missing: String?
        let present: Int?
        let when: Date
        let list: [Inner]
        let map: [String: Int]
        let empty: [String]
        let state: Kind
        enum Kind: String, Encodable { case active }
    }

    @Test func writesJSONThatParsesBackToTheSameValues() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} slash / ünïcödé 🚀"
        let sample = Sample(
            text: tricky, missing: nil, present: 42, when: Date(timeIntervalSince1970: 1_795_433_443.9),
            list: [Inner(flag: true, ratio: 0.25), Inner(flag: false, ratio: 3)], map: ["a": 1], empty: [], state: .active)
        let buffer = try JSONWriter.encode(sample)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
        #expect(parsed["text"] as? String == tricky)
        #expect(parsed.keys.contains("missing") == false)
        #expect(parsed["present"] as? Int == 42)
        #expect(parsed["when"] as? String == "2026-11-23T11:30:43Z")
        let list = try #require(parsed["list"] as? [[String: Any]])
        #expect(list.count == 2)
        #expect(list[0]["flag"] as? Bool == true)
        #expect(list[0]["ratio"] as? Double == 0.25)
        #expect(list[1]["ratio"] as? Double == 3)
        #expect(parsed["map"] as? [String: Int] == ["a": 1])
        #expect((parsed["empty"] as? [Any])?.isEmpty == true)
        #expect(parsed["state"] as? String == "active")
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00Z"),
        (951_782_400.0, "2000-02-29T00:00:00Z"),
        (-1.0, "1969-12-31T23:59:59Z"),
        (4_102_444_799.0, "2099-12-31T23:59:59Z"),
    ])
    func datesAreUTCWithWholeSeconds(_ seconds: Double, _ expected: String) throws {
        let buffer = try JSONWriter.encode([Date(timeIntervalSince1970: seconds)])
        #expect(String(buffer: buffer) == "[\"\(expected)\"]")
    }

    @Test func refusesNonFiniteNumbers() {
        #expect(throws: EncodingError.self) { _ = try JSONWriter.encode([Double.nan]) }
    }
}
