import EnvHubCore
import EnvHubStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The agents' replies in flight on this hub, one per project at a time, and the service that
/// runs them. A reply belongs to no client: it runs here, and clients follow it (the one that
/// asked, and any that reconnect) until it ends or the last of them leaves, which cancels it.
/// On a graceful shutdown the hub stops taking messages and lets the replies in flight finish.
final class AgentReplies: Service, Sendable {
    /// How often followers get a comment while nothing else is sent.
    static let keepAliveInterval: Duration = .seconds(15)

    private enum Slot {
        /// The user's message is being stored.
        case reserved
        case running(AgentReply)
    }

    private struct Job: Sendable {
        let reply: AgentReply
        let relay: AgentRelay
    }

    private let store: any ConversationStore
    private let logger: Logger
    private let slots = NIOLockedValueBox<[String: Slot]>([:])
    private let jobs: AsyncStream<Job>
    private let queue: AsyncStream<Job>.Continuation

    init(store: any ConversationStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (jobs, queue) = AsyncStream.makeStream(of: Job.self)
    }

    /// Replies in flight (`activeAgentStreams` in `/api/stats`).
    var count: Int { slots.withLockedValue { $0.count } }

    /// Stores the user's `message` and starts the agent's reply to it; returns the stream the
    /// asking client follows, its first event the stored message. 409 `reply_in_progress`
    /// while the project's agent is still answering; 404 when the project has gone.
    func begin(projectID: String, message: AgentMessage, relay: (AgentMessage) -> AgentRelay) async throws -> AsyncStream<AgentReply.Element> {
        try slots.withLockedValue { slots in
            guard slots[projectID] == nil else {
                throw EnvHubError(code: "reply_in_progress", status: 409,
                                  message: "the agent is still answering the previous message; follow it at …/messages/stream")
            }
            slots[projectID] = .reserved
        }
        do {
            guard let stored = try await store.appendAgentMessage(message, projectID: projectID) else {
                throw EnvHubError.notFound("the project has gone")
            }
            let reply = AgentReply(projectID: projectID, messageID: stored.id)
            try reply.publish("start", data: AgentEventData.Start(stored: AgentMessageJSON(stored)))
            guard let stream = reply.follow(after: nil) else { throw EnvHubError.unavailable("the reply ended at once") }
            slots.withLockedValue { $0[projectID] = .running(reply) }
            queue.yield(Job(reply: reply, relay: relay(stored)))
            return stream
        } catch {
            slots.withLockedValue { $0[projectID] = nil }
            throw error
        }
    }

    /// The project's reply in flight, from the event after `lastEventID` (see
    /// `AgentReply.follow`); nil when there is none.
    func follow(projectID: String, after lastEventID: String?) -> AsyncStream<AgentReply.Element>? {
        guard case .running(let reply) = slots.withLockedValue({ $0[projectID] }) else { return nil }
        return reply.follow(after: lastEventID)
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await job in jobs.cancelOnGracefulShutdown() {
                group.addTask { await self.perform(job) }
            }
        }
    }

    /// Relays the agent's answer until it ends or nobody follows it any more, stores the
    /// reply as it ended, tells the followers, and frees the project for its next message.
    private func perform(_ job: Job) async {
        let reply = job.reply
        let outcome: AgentRelay.Outcome? = await withTaskGroup(of: AgentRelay.Outcome?.self) { group in
            group.addTask { await job.relay.run(publishingTo: reply) }
            group.addTask {
                for await _ in reply.abandoned {}
                return nil
            }
            group.addTask {
                while (try? await Task.sleep(for: Self.keepAliveInterval)) != nil { reply.keepAlive() }
                return nil
            }
            // Whichever ends first (the answer, or the last follower leaving) ends the others.
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let (status, content, failure): (AgentMessage.Status, String, (code: String, message: String)?) = switch outcome {
        case .done(let text): (.complete, text, nil)
        case .failed(let code, let message): (.failed, reply.text, (code, message))
        case nil: (.cancelled, reply.text, nil)
        }
        let metadata: Logger.Metadata = ["project.id": "\(reply.projectID)", "reply.status": "\(status.rawValue)"]
        if let failure { logger.info("an agent's reply failed", metadata: metadata.merging(["reason": "\(failure.message)"]) { $1 }) }
        // Without `stored` in the final event, clients know the reply is not in the history.
        var stored: AgentMessageJSON?
        do {
            stored = try await store.appendAgentMessage(
                AgentMessage(id: 0, role: .assistant, content: content, status: status, error: failure?.message,
                             replyTo: reply.messageID, createdAt: Date()),
                projectID: reply.projectID
            ).map(AgentMessageJSON.init)
        } catch {
            logger.warning("storing an agent's reply failed", metadata: metadata.merging(["reason": "\(error)"]) { $1 })
        }
        do {
            if let failure {
                try reply.publish("error", data: AgentEventData.Failure(code: failure.code, message: failure.message, stored: stored))
            } else if status == .complete {
                try reply.publish("done", data: AgentEventData.DoneStored(reply: content, stored: stored))
            }
        } catch {
            logger.warning("encoding an agent's event failed", metadata: metadata.merging(["reason": "\(error)"]) { $1 })
        }
        // Freed first, so that a client that has seen the stream end finds the project free.
        slots.withLockedValue { $0[reply.projectID] = nil }
        reply.end()
    }
}
