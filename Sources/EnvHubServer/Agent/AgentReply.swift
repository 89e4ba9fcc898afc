import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One reply in flight: the events sent so far, kept so that a client that reconnects resumes
/// after the last one it saw, and the clients following it. When the last client leaves before
/// the reply is done, `abandoned` ends, and the relay stops asking the agent.
final class AgentReply: Sendable {
    /// One server-sent event as clients get it, already encoded.
    struct Event: Sendable {
        /// `{message id}:{sequence}`, sequence counting from 1 within the reply.
        let id: String
        let type: String
        let encoded: ByteBuffer
    }

    /// What a follower is sent: events, and comments that keep idle connections open (and
    /// show, by a failed write, that the client has gone).
    enum Element: Sendable {
        case event(Event)
        case keepAlive

        var encoded: ByteBuffer {
            switch self {
            case .event(let event): event.encoded
            case .keepAlive: ByteBuffer(string: ": keep-alive\n\n")
            }
        }
    }

    private struct State {
        var events: [Event] = []
        /// The reply's text so far: its tokens joined.
        var text = ""
        var followers: [UUID: AsyncStream<Element>.Continuation] = [:]
        /// The final event has been sent, or the reply was abandoned.
        var ended = false
        var abandoned = false
    }

    let projectID: String
    /// The id of the user's message this replies to; it names the reply's events.
    let messageID: Int64
    /// Ends when the last follower leaves before the reply ends.
    let abandoned: AsyncStream<Void>
    private let abandon: AsyncStream<Void>.Continuation
    private let state = NIOLockedValueBox(State())

    init(projectID: String, messageID: Int64) {
        self.projectID = projectID
        self.messageID = messageID
        (abandoned, abandon) = AsyncStream.makeStream(of: Void.self)
    }

    var text: String { state.withLockedValue { $0.text } }

    /// The events after the one named `lastEventID`, then the rest as they come, until the reply
    /// ends. An id that is not one of this reply's events (another reply's, or none) gives
    /// every event from the first. Nil once the reply has been abandoned.
    func follow(after lastEventID: String?) -> AsyncStream<Element>? {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self)
        let key = UUID()
        continuation.onTermination = { [weak self] _ in self?.leave(key) }
        let (accepted, ended) = state.withLockedValue { state -> (Bool, Bool) in
            guard !state.abandoned else { return (false, true) }
            for event in state.events[resumeIndex(lastEventID, count: state.events.count)...] {
                continuation.yield(.event(event))
            }
            if !state.ended { state.followers[key] = continuation }
            return (true, state.ended)
        }
        // Outside the lock: finishing runs `onTermination`, which takes it.
        if ended { continuation.finish() }
        return accepted ? stream : nil
    }

    /// Where to resume: the index after the event named `lastEventID`, or 0.
    private func resumeIndex(_ lastEventID: String?, count: Int) -> Int {
        let parts = lastEventID?.split(separator: ":", omittingEmptySubsequences: false) ?? []
        guard parts.count == 2, Int64(parts[0]) == messageID, let sequence = Int(parts[1]), sequence >= 1, sequence <= count
        else { return 0 }
        return sequence
    }

    private func leave(_ key: UUID) {
        let abandonedNow = state.withLockedValue { state -> Bool in
            guard state.followers.removeValue(forKey: key) != nil else { return false }
            guard state.followers.isEmpty, !state.ended else { return false }
            state.abandoned = true
            state.ended = true
            return true
        }
        if abandonedNow { abandon.finish() }
    }

    /// Sends an event to every follower and keeps it for those who come later. `token` is the
    /// text it adds to the reply.
    func publish(_ type: String, data: some Encodable, token: String = "") throws {
        var body = try JSONWriter.encode(data)
        let sending = state.withLockedValue { state -> (Event, [AsyncStream<Element>.Continuation])? in
            guard !state.ended else { return nil }
            let id = "\(messageID):\(state.events.count + 1)"
            var encoded = ByteBuffer(string: "id: \(id)\nevent: \(type)\ndata: ")
            encoded.writeBuffer(&body)
            encoded.writeString("\n\n")
            let event = Event(id: id, type: type, encoded: encoded)
            state.events.append(event)
            state.text += token
            return (event, Array(state.followers.values))
        }
        guard let (event, followers) = sending else { return }
        // Only the relay publishes, one event after the other, so followers get them in order.
        for follower in followers { follower.yield(.event(event)) }
    }

    func keepAlive() {
        for follower in state.withLockedValue({ Array($0.followers.values) }) { follower.yield(.keepAlive) }
    }

    /// After the final event: every follower's stream ends.
    func end() {
        let followers = state.withLockedValue { state -> [AsyncStream<Element>.Continuation] in
            state.ended = true
            defer { state.followers.removeAll() }
            return Array(state.followers.values)
        }
        for follower in followers { follower.finish() }
    }
}
