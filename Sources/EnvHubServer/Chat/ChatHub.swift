import EnvHubCore
import EnvHubStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A chat socket as the hub sees it: who, and how to hand it a frame (on its event loop).
final class ChatSocketHandle: Sendable {
    let id: Int
    let user: UserName
    private let socket: NIOLoopBound<ChatSocket>

    init(id: Int, user: UserName, socket: ChatSocket, eventLoop: any EventLoop) {
        self.id = id
        self.user = user
        self.socket = NIOLoopBound(socket, eventLoop: eventLoop)
    }

    var eventLoop: any EventLoop { socket.eventLoop }

    /// On the socket's event loop only. `frame`: a `WireFrame`. `messageID`: set for
    /// `message` frames, which the socket orders and de-duplicates.
    func deliverOnLoop(_ frame: ByteBuffer, room: RoomName, messageID: Int64?, endsSubscription: Bool) {
        socket.value.deliver(frame, room: room, messageID: messageID, endsSubscription: endsSubscription)
    }
}

/// Fan-out of chat events to this replica's sockets, and presence across replicas.
///
/// Events come from the store's change feed: this replica's writes at once, the other
/// replicas' through PostgreSQL LISTEN/NOTIFY (sent in the writing transaction). Within a room
/// messages are handed on in id order: one that arrives ahead of its predecessor (two local
/// writes finishing in the other order) waits until the gap is filled, from the store if it
/// does not fill itself within `gapWait`. Each socket is handed each frame once, encoded once
/// for all.
///
/// Presence: each replica tells the others, per room, which users have a socket subscribed
/// there (on every change, and every `heartbeat` while any do); what a replica said expires
/// after three heartbeats without news, so a replica that died drops out.
final class ChatHub: Service, Sendable {
    static let gapWait = Duration.milliseconds(100)
    static let defaultFlushInterval = Duration.milliseconds(30)
    static let heartbeat = Duration.seconds(20)
    /// Users per presence notification, so that one stays within PostgreSQL's NOTIFY limit.
    static let usersPerNotification = 150

    private let store: any HubStore
    private let logger: Logger
    private var replicaID: String { store.changes.replicaID }
    private let state = NIOLockedValueBox(State())
    private let nextSocketID = NIOLockedValueBox(0)
    /// The longest a busy event loop waits between rounds of writing its chat sockets (see `ChatFlusher`).
    let flushInterval: Duration
    private let flushers = EventLoopLocal<ChatFlusher>()

    private struct State {
        var subscribers: [RoomName: RoomSubscribers] = [:]
        /// Sockets per user, in each room and (nil) at all: who is online, without a scan.
        var userSockets: [RoomName?: [UserName: Int]] = [:]
        /// The id each room's next message must have to be handed on (unknown until one is seen).
        var nextID: [RoomName: Int64] = [:]
        var heldBack: [RoomName: [Int64: ChatMessage]] = [:]
        var gapFillScheduled: Set<RoomName> = []
        /// What other replicas said: per replica, per room (nil: connected at all), the users.
        var remote: [String: (rooms: [RoomName?: Set<UserName>], heard: ContinuousClock.Instant)] = [:]
        /// The `online` list each room's subscribers were last sent.
        var announcedOnline: [RoomName: [String]] = [:]
    }

    init(store: any HubStore, logger: Logger, flushInterval: Duration = ChatHub.defaultFlushInterval) {
        self.store = store
        self.logger = logger
        self.flushInterval = flushInterval
        store.changes.subscribe { [weak self] change in self?.received(change) }
    }

    // MARK: sockets

    func makeSocketID() -> Int { nextSocketID.withLockedValue { $0 += 1; return $0 } }

    /// What flushes the chat sockets of `eventLoop`; call on that loop.
    func flusher(for eventLoop: any EventLoop) -> ChatFlusher {
        flushers.value(on: eventLoop) { ChatFlusher(eventLoop: eventLoop, interval: TimeAmount(flushInterval)) }
    }

    func connected(_ socket: ChatSocketHandle) {
        let changed = state.withLockedValue { state in Self.count(socket.user, in: nil, by: 1, &state) }
        if changed { announce(room: nil) }
    }

    /// `rooms`: those the socket was subscribed to.
    func disconnected(_ socket: ChatSocketHandle, rooms: [RoomName]) {
        let (changedRooms, wentOffline) = state.withLockedValue { state in
            var changed: [RoomName] = []
            for room in rooms where state.subscribers[room]?.remove(socket) == true {
                if Self.count(socket.user, in: room, by: -1, &state) { changed.append(room) }
            }
            return (changed, Self.count(socket.user, in: nil, by: -1, &state))
        }
        for room in changedRooms { presenceChanged(room) }
        if wentOffline { announce(room: nil) }
    }

    /// Adds the socket to the room's subscribers; live messages reach it from now on.
    func subscribe(_ socket: ChatSocketHandle, to room: RoomName) {
        let changed = state.withLockedValue { state in
            state.subscribers[room, default: RoomSubscribers()].insert(socket) && Self.count(socket.user, in: room, by: 1, &state)
        }
        if changed { presenceChanged(room) }
    }

    func unsubscribe(_ socket: ChatSocketHandle, from room: RoomName) {
        let changed = state.withLockedValue { state in
            state.subscribers[room]?.remove(socket) == true && Self.count(socket.user, in: room, by: -1, &state)
        }
        if changed { presenceChanged(room) }
    }

    /// Counts a socket of `user` in or out of `room` (nil: connected at all); true when the
    /// user appeared there or left it.
    private static func count(_ user: UserName, in room: RoomName?, by delta: Int, _ state: inout State) -> Bool {
        let before = state.userSockets[room]?[user] ?? 0
        let after = max(0, before + delta)
        state.userSockets[room, default: [:]][user] = after == 0 ? nil : after
        if state.userSockets[room]?.isEmpty == true { state.userSockets[room] = nil }
        return (before == 0) != (after == 0)
    }

    /// Users with a socket subscribed to `room`, on any replica, by name.
    func online(in room: RoomName) -> [String] {
        state.withLockedValue { Self.online(in: room, $0) }
    }

    /// Users with a chat socket open, on any replica.
    var usersOnline: Int {
        state.withLockedValue { state in
            var users = Set((state.userSockets[nil] ?? [:]).keys)
            for (_, replica) in state.remote { users.formUnion(replica.rooms[nil] ?? []) }
            return users.count
        }
    }

    func typing(_ user: UserName, in room: RoomName) {
        deliverTyping(user, in: room)
        tellOthers(.typing(room: room, user: user))
    }

    // MARK: events

    private func received(_ change: StoreChange) {
        switch change {
        case .message(let topic, let payload) where topic == ChatEvent.topic:
            do {
                handle(try ChatEvent(payload: payload))
            } catch {
                logger.warning("unreadable chat event", metadata: ["error": "\(error)"])
            }
        case .everything:
            // Notifications may have been missed: catch up every room someone listens to, and
            // let the others say again who is where.
            let rooms = state.withLockedValue { Array($0.subscribers.filter { !$0.value.isEmpty }.keys) }
            for room in rooms { fillGap(in: room) }
            tellOthers(.presenceWanted(replica: replicaID))
            announceAll()
        default:
            break
        }
    }

    private func handle(_ event: ChatEvent) {
        switch event {
        case .message(let message):
            sequence(message)
        case .edited(let message):
            broadcast(ServerFrame.message("edited", message).encoded, room: message.room)
        case .stored(let room, let id, let edited):
            Task {
                guard let (message, _) = try? await store.message(in: room, id: id) else { return }
                if edited {
                    broadcast(ServerFrame.message("edited", message).encoded, room: room)
                } else {
                    sequence(message)
                }
            }
        case .deleted(let room, let id):
            var frame = ServerFrame("deleted", room: room)
            frame.id = id
            broadcast(frame.encoded, room: room)
        case .roomDeleted(let room):
            broadcast(ServerFrame("room_deleted", room: room).encoded, room: room, endsSubscription: true)
            state.withLockedValue { state in
                state.subscribers[room] = nil
                state.userSockets[room] = nil
                state.nextID[room] = nil
                state.heldBack[room] = nil
                state.announcedOnline[room] = nil
            }
        case .typing(let room, let user):
            deliverTyping(user, in: room)
        case .presence(let replica, let room, let users, let continued):
            guard replica != replicaID else { return }
            state.withLockedValue { state in
                var entry = state.remote[replica] ?? ([:], .now)
                if continued { entry.rooms[room, default: []].formUnion(users) } else { entry.rooms[room] = Set(users) }
                entry.heard = .now
                state.remote[replica] = entry
            }
            if let room { presenceChanged(room, announce: false) }
        case .presenceWanted(let replica):
            guard replica != replicaID else { return }
            announceAll()
        }
    }

    /// Hands `message` on in id order (see the type's comment).
    private func sequence(_ message: ChatMessage) {
        let room = message.room
        let fill = state.withLockedValue { state -> Bool in
            let expected = state.nextID[room] ?? message.id
            if message.id < expected { return false }  // already handed on
            if message.id > expected, !(state.subscribers[room]?.isEmpty ?? true) {
                state.heldBack[room, default: [:]][message.id] = message
                return state.gapFillScheduled.insert(room).inserted
            }
            Self.handOn(message, &state)
            return false
        }
        if fill {
            Task {
                try? await Task.sleep(for: Self.gapWait)
                fillGap(in: room)
            }
        }
    }

    /// Reads from the store what this replica missed in `room`, then hands on what it holds.
    private func fillGap(in room: RoomName) {
        Task {
            let after = state.withLockedValue { ($0.nextID[room] ?? 1) - 1 }
            let stored = (try? await store.messages(in: room, before: nil, after: after, limit: 1_000)) ?? []
            state.withLockedValue { state in
                state.gapFillScheduled.remove(room)
                var pending = state.heldBack.removeValue(forKey: room) ?? [:]
                for message in stored { pending[message.id] = pending[message.id] ?? message }
                for id in pending.keys.sorted() where id >= (state.nextID[room] ?? id) {
                    if let message = pending[id] { Self.handOn(message, &state) }
                }
            }
        }
    }

    private static func handOn(_ message: ChatMessage, _ state: inout State) {
        let room = message.room
        state.nextID[room] = message.id + 1
        if let subscribers = state.subscribers[room], !subscribers.isEmpty {
            subscribers.deliver(ServerFrame.message("message", message).encoded, room: room, messageID: message.id)
        }
        // Held messages that now follow in order go on too.
        while let next = state.heldBack[room]?.removeValue(forKey: state.nextID[room] ?? 0) {
            handOn(next, &state)
        }
    }

    private func broadcast(_ frame: ByteBuffer, room: RoomName, endsSubscription: Bool = false) {
        state.withLockedValue { state in
            state.subscribers[room]?.deliver(frame, room: room, endsSubscription: endsSubscription)
        }
    }

    private func deliverTyping(_ user: UserName, in room: RoomName) {
        var frame = ServerFrame("typing", room: room)
        frame.user = user.rawValue
        let encoded = frame.encoded
        state.withLockedValue { state in
            state.subscribers[room]?.deliver(encoded, room: room, except: user)
        }
    }

    // MARK: presence

    private static func localUsers(in room: RoomName?, _ state: State) -> Set<UserName> {
        Set((state.userSockets[room] ?? [:]).keys)
    }

    private static func online(in room: RoomName, _ state: State) -> [String] {
        var users = localUsers(in: room, state)
        for (_, replica) in state.remote { users.formUnion(replica.rooms[room] ?? []) }
        return users.map(\.rawValue).sorted()
    }

    /// Tells the room's local subscribers who is online there if that changed, and (`announce`)
    /// the other replicas who is here.
    private func presenceChanged(_ room: RoomName, announce shouldAnnounce: Bool = true) {
        let frame: ByteBuffer? = state.withLockedValue { state in
            let online = Self.online(in: room, state)
            guard state.announcedOnline[room] != online else { return nil }
            state.announcedOnline[room] = online
            var frame = ServerFrame("presence", room: room)
            frame.online = online
            let encoded = frame.encoded
            state.subscribers[room]?.deliver(encoded, room: room)
            return encoded
        }
        if shouldAnnounce, frame != nil { announce(room: room) }
    }

    /// Tells the other replicas which users this one has in `room` (nil: connected at all).
    private func announce(room: RoomName?) {
        let users = state.withLockedValue { Self.localUsers(in: room, $0) }.sorted { $0.rawValue < $1.rawValue }
        var parts = stride(from: 0, to: users.count, by: Self.usersPerNotification).map {
            Array(users[$0..<min($0 + Self.usersPerNotification, users.count)])
        }
        if parts.isEmpty { parts = [[]] }
        for (index, part) in parts.enumerated() {
            tellOthers(.presence(replica: replicaID, room: room, users: part, continued: index > 0))
        }
    }

    private func announceAll() {
        let rooms = state.withLockedValue { state in state.subscribers.filter { !$0.value.isEmpty }.map(\.key) }
        announce(room: nil)
        for room in rooms { announce(room: room) }
    }

    private func tellOthers(_ event: ChatEvent) {
        let message = event.change()
        let store = store
        Task {
            do {
                try await store.tellOtherReplicas(.message(topic: message.topic, payload: message.payload))
            } catch {
                logger.debug("could not tell other replicas", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The heartbeat: says again who is here, and forgets replicas that stopped saying so.
    func run() async throws {
        tellOthers(.presenceWanted(replica: replicaID))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: Self.heartbeat) })) != nil else { break }
            announceAll()
            let expired = state.withLockedValue { state -> [RoomName] in
                let silent = state.remote.filter { ContinuousClock.now - $0.value.heard > Self.heartbeat * 3 }
                for replica in silent.keys { state.remote[replica] = nil }
                return silent.values.flatMap { $0.rooms.keys.compactMap { $0 } }
            }
            for room in Set(expired) { presenceChanged(room, announce: false) }
        }
    }
}
