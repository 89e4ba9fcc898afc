import EnvHubCore
import EnvHubStore
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Progress and state changes of environments, for `GET …/events`, whichever replica does
/// the work: events made here go to this replica's listeners at once and to the others
/// through the store (`forwardToOtherReplicas`), in order. Each listener sees ids that grow
/// for the life of its replica's process.
final class ProjectEvents: Sendable {
    static let topic = "project-events"

    struct Event: Sendable, Codable {
        let id: Int
        /// `state` or `progress`.
        let type: String
        let state: EnvironmentState?
        /// A sentence for people: "starting web", "waiting for web to answer /health", …
        var message: String
        /// Place in the queue of starts, when waiting for one.
        let position: Int?
        let at: Date
    }

    private struct Subscriber {
        let projectID: String
        let continuation: AsyncStream<Event>.Continuation
    }

    /// An event as it travels between replicas.
    private struct Envelope: Codable {
        let projectID: String
        var event: Event
    }

    private let state = NIOLockedValueBox<(nextID: Int, subscribers: [UUID: Subscriber])>((1, [:]))
    private let replicas: any ProjectStore & ChangeAnnouncing
    private let outbox: AsyncStream<Envelope>.Continuation
    private let outgoing: AsyncStream<Envelope>

    init(replicas: any ProjectStore & ChangeAnnouncing) {
        self.replicas = replicas
        (outgoing, outbox) = AsyncStream.makeStream(of: Envelope.self, bufferingPolicy: .bufferingNewest(4096))
        replicas.changes.subscribe { [weak self] change in
            switch change {
            case .message(Self.topic, let payload):
                guard let self, let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(payload.utf8)) else { return }
                // A fresh id from this replica's sequence: listeners here see ids grow.
                let event = envelope.event
                publishHere(envelope.projectID, makeEvent(
                    type: event.type, state: event.state, message: event.message, position: event.position, at: event.at))
            case .everything:
                // The feed was cut and events may have been missed: tell every listener where
                // its project is now, so that none waits for a step that already passed.
                Task { [weak self] in await self?.resendStates() }
            default:
                break
            }
        }
    }

    private func resendStates() async {
        let projectIDs = Set(state.withLockedValue { $0.subscribers.values.map(\.projectID) })
        for id in projectIDs {
            if let project = try? await replicas.project(id: id) { publishHere(id, snapshot(project)) }
        }
    }

    /// Sends this replica's events to the others, one after the other, until cancelled.
    func forwardToOtherReplicas(logger: Logger) async {
        let encoder = JSONEncoder()
        for await var envelope in outgoing {
            // NOTIFY payloads are limited to 8,000 bytes; a long failure reason is cut.
            if envelope.event.message.utf8.count > 4000 {
                envelope.event.message = String(envelope.event.message.prefix(2000)) + " …"
            }
            do {
                let payload = String(decoding: try encoder.encode(envelope), as: UTF8.self)
                try await replicas.tellOtherReplicas(.message(topic: Self.topic, payload: payload))
            } catch {
                logger.warning("telling other replicas of an event failed", metadata: ["error": "\(error)"])
            }
        }
    }

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

    private func makeEvent(
        type: String, state eventState: EnvironmentState?, message: String, position: Int?, at date: Date = Date()
    ) -> Event {
        let id = state.withLockedValue { value in
            defer { value.nextID += 1 }
            return value.nextID
        }
        return Event(id: id, type: type, state: eventState, message: message, position: position, at: date)
    }

    private func publish(_ projectID: String, _ event: Event) {
        publishHere(projectID, event)
        outbox.yield(Envelope(projectID: projectID, event: event))
    }

    private func publishHere(_ projectID: String, _ event: Event) {
        let targets = state.withLockedValue { $0.subscribers.values.filter { $0.projectID == projectID }.map(\.continuation) }
        for continuation in targets { continuation.yield(event) }
    }

    private static func describe(_ project: Project) -> String {
        project.stateReason.isEmpty ? "\(project.name) is \(project.state.rawValue)"
            : "\(project.name) is \(project.state.rawValue): \(project.stateReason)"
    }
}
