import NIOConcurrencyHelpers
import NIOCore

/// One `Value` per event loop, made the first time it is asked for on that loop, and used only
/// there: state that a loop's connections share without a lock (idle upstream connections,
/// chat flush rounds).
struct EventLoopLocal<Value>: Sendable {
    private let values = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<Value>]>([:])

    /// `eventLoop`'s value, made by `make` if it has none yet; call on that loop.
    func value(on eventLoop: any EventLoop, make: () -> Value) -> Value {
        values.withLockedValue { values in
            let key = ObjectIdentifier(eventLoop)
            if let value = values[key] { return value.value }
            let value = make()
            values[key] = NIOLoopBound(value, eventLoop: eventLoop)
            return value
        }
    }
}
