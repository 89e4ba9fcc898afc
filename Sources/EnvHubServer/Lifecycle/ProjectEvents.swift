import EnvHubCore
import Foundation
import NIOConcurrencyHelpers

/// Progress and state changes of environments, for `GET …/events`. Events of starts and
/// stops that this replica performs; each has an id that grows for the life of the process.
final class ProjectEvents: Sendable {
    struct Event: Sendable, Encodable {
        let id: Int
        /// `state` or `progress`.
        let type: String
        let state: EnvironmentState?
        /// A sentence for people: "starting web", "waiting for web to answer /health", …
        let message: String
        /// Place in the queue of starts, when waiting for one.
        let position: Int?
        let at: Date
    }

    private struct Subscriber {
        let projectID: String
        let continuation: AsyncStream<Event>.Continuation
    }

    private let state = NIOLockedValueBox<(nextID: Int, subscribers: [UUID: Subscriber])>((1, [:]))

    /// Events of `projectID` from now on, until the stream is dropped.
    func subscribe(_ projectID: String) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(256))
        let key = UUID()
        state.withLockedValue { $0.subscribers[key] = Subscriber(projectID: projectID, continuation: continuation) }
        continuation.onTermination = { [state] _ in state.withLockedValue { _ = $0.subscribers.removeValue(forKey: key) } }
        return stream
    }

    /// An event with a fresh id, not sent to anyone: the first event of a new stream.
    func snapshot(_ project: Project) -> Event {
        makeEvent(type: "state", state: project.state, message: Self.describe(project), position: nil)
    }

    func stateChanged(_ project: Project) {
        publish(project.id, makeEvent(type: "state", state: project.state, message: Self.describe(project), position: nil))
    }

    /// Sent to every listener now and then, so that connections whose client left are noticed
    /// (writing to them fails) and proxies do not time them out.
    func heartbeat() {
        let event = makeEvent(type: "heartbeat", state: nil, message: "", position: nil)
        let targets = state.withLockedValue { $0.subscribers.values.map(\.continuation) }
        for continuation in targets { continuation.yield(event) }
    }

    func progress(_ projectID: String, _ message: String, position: Int? = nil) {
        publish(projectID, makeEvent(type: "progress", state: nil, message: message, position: position))
    }

    private func makeEvent(type: String, state eventState: EnvironmentState?, message: String, position: Int?) -> Event {
        let id = state.withLockedValue { value in
            defer { value.nextID += 1 }
            return value.nextID
        }
        return Event(id: id, type: type, state: eventState, message: message, position: position, at: Date())
    }

    private func publish(_ projectID: String, _ event: Event) {
        let targets = state.withLockedValue { $0.subscribers.values.filter { $0.projectID == projectID }.map(\.continuation) }
        for continuation in targets { continuation.yield(event) }
    }

    private static func describe(_ project: Project) -> String {
        project.stateReason.isEmpty ? "\(project.name) is \(project.state.rawValue)"
            : "\(project.name) is \(project.state.rawValue): \(project.stateReason)"
    }
}
