import EnvHubCore
import NIOCore

/// The sockets subscribed to one room on this replica, kept grouped by event loop so that a
/// message reaches a thousand of them with one task per loop and a walk over an array: no
/// per-message lookups, grouping or copying (an array handed to a loop is shared, and copied
/// only if the room changes while the loop still walks it).
struct RoomSubscribers {
    /// The sockets of one event loop, and where each is in `sockets`.
    private struct OnLoop {
        let loop: any EventLoop
        var sockets: [ChatSocketHandle] = []
        var positions: [Int: Int] = [:]
    }

    /// A few at most: one per event loop with a subscriber.
    private var loops: [OnLoop] = []

    var isEmpty: Bool { loops.allSatisfy { $0.sockets.isEmpty } }

    /// False when it was already there.
    mutating func insert(_ socket: ChatSocketHandle) -> Bool {
        let index: Int
        if let found = loops.firstIndex(where: { $0.loop === socket.eventLoop }) {
            index = found
        } else {
            loops.append(OnLoop(loop: socket.eventLoop))
            index = loops.count - 1
        }
        guard loops[index].positions[socket.id] == nil else { return false }
        loops[index].positions[socket.id] = loops[index].sockets.count
        loops[index].sockets.append(socket)
        return true
    }

    /// False when it was not there.
    mutating func remove(_ socket: ChatSocketHandle) -> Bool {
        guard let index = loops.firstIndex(where: { $0.loop === socket.eventLoop }),
              let position = loops[index].positions.removeValue(forKey: socket.id) else { return false }
        let last = loops[index].sockets.removeLast()
        if last.id != socket.id {
            loops[index].sockets[position] = last
            loops[index].positions[last.id] = position
        }
        return true
    }

    /// Hands `frame` (JSON) to every socket (but those of `except`), encoded as a WebSocket
    /// frame once for all. `messageID`: set for `message` frames, which each socket orders
    /// and de-duplicates.
    func deliver(
        _ frame: ByteBuffer, room: RoomName, messageID: Int64? = nil, endsSubscription: Bool = false, except: UserName? = nil
    ) {
        let wire = WireFrame.text(frame)
        for onLoop in loops where !onLoop.sockets.isEmpty {
            let sockets = except.map { user in onLoop.sockets.filter { $0.user != user } } ?? onLoop.sockets
            onLoop.loop.execute {
                for socket in sockets {
                    socket.deliverOnLoop(wire, room: room, messageID: messageID, endsSubscription: endsSubscription)
                }
            }
        }
    }
}
