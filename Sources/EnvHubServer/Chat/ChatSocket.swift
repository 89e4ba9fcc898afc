import EnvHubCore
import EnvHubStore
import Foundation
import NIOCore
import NIOWebSocket

/// One client's chat socket (docs/chat.md), on its channel's event loop, after the upgrade
/// (`ChatUpgrade`) replaced the HTTP handlers with WebSocket ones. It reads frames, answers
/// them (store work runs in a task and comes back to the loop), and writes what `ChatHub`
/// hands it, in order and once each.
///
/// A client that lets more than the channel's high-water mark (1 MiB) of frames pile up is
/// closed with 4008 instead of being waited for.
final class ChatSocket: ChannelInboundHandler, RemovableChannelHandler, ChatFlusher.Target {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    static let tooSlowCode = WebSocketErrorCode(codeNumber: 4008)
    static let maxMissedMessages = 500
    /// How long a slow client gets to read up to the close frame that says why.
    static let tooSlowGrace = TimeAmount.seconds(30)

    private let identity: Identity
    private let hub: ChatHub
    private let store: any HubStore
    private var handle: ChatSocketHandle?
    private var context: ChannelHandlerContext?
    private var flusher: ChatFlusher?
    /// The frame encoder's context: what is written there skips the encoder (see `writeUnsent`).
    private var wire: ChannelHandlerContext?
    /// Encoded frames waiting for this loop's next flush round, one after the other.
    private var unsent: ByteBuffer?
    /// A flush round is asked for.
    private var flushPending = false

    /// Per room: what the client has been sent, and while it is being caught up, what waits.
    private struct Subscription {
        var lastDelivered: Int64 = 0
        var catchingUp = true
        /// `WireFrame`s.
        var waiting: [(id: Int64, frame: ByteBuffer)] = []
    }

    private var subscriptions: [RoomName: Subscription] = [:]
    /// A text message arriving in several frames; nil when none is.
    private var fragments: ByteBuffer?
    private var droppingFragments = false
    private var closing = false
    /// Sends waiting while the one before is stored: a socket's messages are stored (and
    /// numbered) in the order it sent them.
    private var waitingSends: [(room: RoomName, text: String, key: String?, ref: String?)] = []
    private var storing = false
    static let maxWaitingSends = 1_000
    /// At most this many waiting sends are stored in one transaction.
    static let maxSendsPerStore = 100

    init(identity: Identity, hub: ChatHub, store: any HubStore) {
        self.identity = identity
        self.hub = hub
        self.store = store
    }

    // MARK: ChannelInboundHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flusher = hub.flusher(for: context.eventLoop)
        let handle = ChatSocketHandle(id: hub.makeSocketID(), user: identity.user.name, socket: self, eventLoop: context.eventLoop)
        self.handle = handle
        hub.connected(handle)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        wire = nil
        unsent = nil
        if let handle { hub.disconnected(handle, rooms: Array(subscriptions.keys)) }
        handle = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            droppingFragments = false
            if frame.fin { return received(frame.unmaskedData) }
            fragments = frame.unmaskedData
            checkFragmentSize()
        case .continuation:
            guard !droppingFragments, var fragments else { return }
            var data = frame.unmaskedData
            fragments.writeBuffer(&data)
            self.fragments = fragments
            if !checkFragmentSize(), frame.fin {
                self.fragments = nil
                received(fragments)
            }
        case .binary:
            droppingFragments = !frame.fin
            sendError("bad_frame", "frames are JSON text; binary frames are not used", ref: nil)
        case .ping:
            guard !closing else { return }
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            flushSoon()
        case .connectionClose:
            close(code: .normalClosure, reason: "")
        default:
            break
        }
    }

    /// Passed on so Hummingbird's request loop, still waiting behind this handler, ends.
    func channelInactive(context: ChannelHandlerContext) {
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            close(code: .goingAway, reason: "the hub is shutting down")
        } else if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: frames from the client

    /// False while the message being assembled is within the limit; past it, says so once
    /// and drops the rest of the message.
    @discardableResult
    private func checkFragmentSize() -> Bool {
        guard let fragments, fragments.readableBytes > ClientFrame.maxBytes else { return false }
        self.fragments = nil
        droppingFragments = true
        sendError("too_large", "a frame may be at most \(ClientFrame.maxBytes >> 10) KiB", ref: nil)
        return true
    }

    private func received(_ data: ByteBuffer) {
        guard data.readableBytes <= ClientFrame.maxBytes else {
            return sendError("too_large", "a frame may be at most \(ClientFrame.maxBytes >> 10) KiB", ref: nil)
        }
        if JSON.containsNUL(data.readableBytesView) { return sendError("bad_frame", JSON.nulMessage, ref: nil) }
        let frame: ClientFrame
        do {
            frame = try JSON.decoder.decode(ClientFrame.self, from: Data(data.readableBytesView))
        } catch {
            return sendError("bad_frame", "a frame is a JSON object with a \"type\" and the fields of that type", ref: nil)
        }
        let ref = frame.ref.map { String($0.prefix(ClientFrame.maxRefLength)) }
        if frame.type == "ping" {
            var pong = ServerFrame("pong")
            pong.ref = ref
            return send(pong.encoded)
        }
        guard ["subscribe", "unsubscribe", "send", "typing", "read"].contains(frame.type) else {
            return sendError("bad_frame", "unknown frame type \"\(frame.type)\"", ref: ref)
        }
        guard let rawRoom = frame.room else { return sendError("invalid_field", "room is required", ref: ref) }
        guard let room = RoomName(rawValue: rawRoom) else { return sendError("not_found", "no room \(rawRoom)", ref: ref) }
        switch frame.type {
        case "subscribe": subscribe(room, since: frame.since, ref: ref)
        case "unsubscribe": unsubscribe(room, ref: ref)
        case "send": post(frame, in: room, ref: ref)
        case "typing":
            guard subscriptions[room] != nil else {
                return sendError("not_subscribed", "subscribe to \(room) first", ref: ref)
            }
            hub.typing(identity.user.name, in: room)
        default: markRead(room, id: frame.id, ref: ref)
        }
    }

    private func subscribe(_ room: RoomName, since: Int64?, ref: String?) {
        guard let handle else { return }
        if let since, since < 0 { return sendError("invalid_field", "since must be a message id", ref: ref) }
        // Subscribed first, so that nothing stored from now on is missed; what arrives while the
        // missed messages are read waits, and what both bring is sent once.
        subscriptions[room] = Subscription()
        hub.subscribe(handle, to: room)
        let store = store
        let hub = hub
        later {
            guard let stored = try await store.room(named: room) else { return nil }
            var missed: [ChatMessage] = []
            if let since {
                // The newest ones, when more were missed than one frame burst should carry.
                missed = try await store.messages(in: room, before: stored.lastMessageID + 1, after: nil, limit: Self.maxMissedMessages)
                    .filter { $0.id > since }
            }
            return (stored.lastMessageID, missed, hub.online(in: room))
        } then: { (result: (last: Int64, missed: [ChatMessage], online: [String])?) in
            guard let result else {
                self.subscriptions[room] = nil
                hub.unsubscribe(handle, from: room)
                return self.sendError("not_found", "no room \(room)", ref: ref)
            }
            guard self.subscriptions[room] != nil else { return }  // unsubscribed meanwhile
            var subscribed = ServerFrame("subscribed", room: room)
            subscribed.last = result.last
            subscribed.online = result.online
            subscribed.ref = ref
            if let since, let first = result.missed.first, first.id > since + 1 { subscribed.truncated = true }
            self.send(subscribed.encoded)
            for message in result.missed { self.send(ServerFrame.message("message", message).encoded) }
            var subscription = self.subscriptions[room] ?? Subscription()
            subscription.lastDelivered = max(result.last, result.missed.last?.id ?? 0)
            subscription.catchingUp = false
            for waiting in subscription.waiting where waiting.id > subscription.lastDelivered {
                self.sendWire(waiting.frame)
                subscription.lastDelivered = waiting.id
            }
            subscription.waiting = []
            self.subscriptions[room] = subscription
        }
    }

    private func unsubscribe(_ room: RoomName, ref: String?) {
        guard let handle, subscriptions.removeValue(forKey: room) != nil else {
            return sendError("not_subscribed", "not subscribed to \(room)", ref: ref)
        }
        hub.unsubscribe(handle, from: room)
        var frame = ServerFrame("unsubscribed", room: room)
        frame.ref = ref
        send(frame.encoded)
    }

    private func post(_ frame: ClientFrame, in room: RoomName, ref: String?) {
        let text: String
        let key: String?
        do {
            text = try ChatMessage.validText(frame.text ?? "")
            key = try ChatMessage.validKey(frame.key)
        } catch {
            return sendError(error.code, error.message, ref: ref)
        }
        guard waitingSends.count < Self.maxWaitingSends else {
            return sendError("unavailable", "\(Self.maxWaitingSends) sends already wait to be stored; wait for their acks", ref: ref)
        }
        waitingSends.append((room, text, key, ref))
        storeNextSend()
    }

    /// Stores what waits, all of it in one transaction (a socket that sends faster than one
    /// store takes is caught up in one go, not fallen further behind), then acknowledges each
    /// in the order sent.
    private func storeNextSend() {
        guard !storing, !waitingSends.isEmpty else { return }
        storing = true
        let batch = Array(waitingSends.prefix(Self.maxSendsPerStore))
        waitingSends.removeFirst(batch.count)
        let store = store
        let author = identity.user
        let posts = batch.map { MessagePost(room: $0.room, text: $0.text, key: $0.key) }
        later {
            try await store.postMessages(posts, author: author, at: Date())
        } then: { results in
            for (send, posted) in zip(batch, results) {
                guard let (message, _) = posted else {
                    self.sendError("not_found", "no room \(send.room)", ref: send.ref)
                    continue
                }
                var ack = ServerFrame.message("ack", message)
                ack.key = send.key
                ack.ref = send.ref
                self.send(ack.encoded)
            }
        } finally: {
            self.storing = false
            self.storeNextSend()
        }
    }

    private func markRead(_ room: RoomName, id: Int64?, ref: String?) {
        guard let id, id >= 0 else { return sendError("invalid_field", "id must be a message id", ref: ref) }
        let store = store
        let userID = identity.user.id
        later {
            try await store.markRead(in: room, userID: userID, upTo: id)
        } then: { found in
            if !found { self.sendError("not_found", "no room \(room)", ref: ref) }
        }
    }

    /// Runs `work` off the event loop, then `done` back on it (if the socket is still open);
    /// a failure becomes an `unavailable` error frame. `finally` runs after either.
    private func later<T: Sendable>(
        _ work: @escaping @Sendable () async throws -> T, then done: @escaping (T) -> Void, finally: @escaping () -> Void = {}
    ) {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: T.self)
        promise.completeWithTask(work)
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard self.context != nil, !self.closing else { return }
            switch result {
            case .success(let value): done(value)
            case .failure(let error as EnvHubError): self.sendError(error.code, error.message, ref: nil)
            case .failure: self.sendError("unavailable", "the hub could not reach its store; nothing was stored", ref: nil)
            }
            finally()
        }
    }

    // MARK: frames to the client

    /// From the hub, on this loop: a `WireFrame`. Messages go out in id order, once; others
    /// (and a frame that ends the subscription, `room_deleted`) as they come.
    func deliver(_ frame: ByteBuffer, room: RoomName, messageID: Int64?, endsSubscription: Bool) {
        guard let index = subscriptions.index(forKey: room) else { return }
        if endsSubscription { subscriptions.remove(at: index) }
        guard let messageID, !endsSubscription else { return sendWire(frame) }
        // In place: one hash of the room's name per delivery.
        if subscriptions.values[index].catchingUp {
            subscriptions.values[index].waiting.append((messageID, frame))
        } else if messageID > subscriptions.values[index].lastDelivered {
            subscriptions.values[index].lastDelivered = messageID
            sendWire(frame)
        }
    }

    private func send(_ json: ByteBuffer) { sendWire(WireFrame.text(json)) }

    private func sendError(_ code: String, _ message: String, ref: String?) {
        send(ServerFrame.encode(ErrorFrame(code, message, ref: ref)))
    }

    /// Keeps an encoded frame for the next flush round (`flushNow`). Until then a socket's
    /// frames collect in one buffer (the first one shares the bytes every socket is sent), so
    /// that the channel is written once a round, not once a frame.
    private func sendWire(_ frame: ByteBuffer) {
        guard context != nil, !closing else { return }
        if unsent == nil {
            unsent = frame
        } else {
            unsent?.writeImmutableBuffer(frame)
        }
        flushSoon()
    }

    /// One flush per socket per round (see `ChatFlusher`).
    private func flushSoon() {
        guard !flushPending else { return }
        flushPending = true
        flusher?.flushSoon(self)
    }

    /// From `ChatFlusher`.
    func flushNow() {
        flushPending = false
        writeUnsent()
        (wire ?? context)?.flush()  // from the encoder's place: the same flush, fewer handlers to pass
    }

    /// Writes the frames kept for this round from below the frame encoder (`wire`), so the
    /// bytes go out as they are; control frames go through the encoder. A client that has not
    /// read what the rounds before wrote (the channel holds more than 1 MiB) is closed instead:
    /// checked here, once a round, where the channel is touched anyway.
    private func writeUnsent() {
        guard let context, let frames = unsent else { return }
        unsent = nil
        guard context.channel.isWritable else {
            return close(code: Self.tooSlowCode, reason: "too slow: more than 1 MiB of frames waiting", grace: Self.tooSlowGrace)
        }
        writeToWire(frames, context: context)
    }

    private func writeToWire(_ frames: ByteBuffer, context: ChannelHandlerContext) {
        // Looked up at the first write: the encoder may be added after this handler.
        if wire == nil { wire = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self) }
        wire?.write(NIOAny(frames), promise: nil)
    }

    /// Sends a close frame and closes once it is written, or after `grace` for a client that
    /// reads nothing.
    private func close(code: WebSocketErrorCode, reason: String, grace: TimeAmount = .seconds(2)) {
        guard let context, !closing else { return }
        closing = true
        // What was sent before goes first, unless the client is too far behind to take it.
        if let frames = unsent, context.channel.isWritable { writeToWire(frames, context: context) }
        unsent = nil
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: written)
        let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: grace) { context.close(promise: nil) }
        written.futureResult.assumeIsolated().whenComplete { _ in
            deadline.cancel()
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension ChatSocket: Sendable {}
