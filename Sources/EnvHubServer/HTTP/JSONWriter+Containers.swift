import Foundation

extension JSONWriter {
    struct StreamingEncoder: Encoder {
        let container: Container
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            container.open(.object)
            return KeyedEncodingContainer(KeyedWriter<Key>(container: container))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            container.open(.array)
            return UnkeyedWriter(container: container)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            container.open(.single)
            return SingleWriter(container: container)
        }
    }

    struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let container: Container
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) throws {
            container.key(key)
            container.sink.buffer.writeStaticString("null")
        }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            container.key(key)
            try container.sink.write(value)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            container.key(key)
            return StreamingEncoder(container: container.child()).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            container.key(key)
            return StreamingEncoder(container: container.child()).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            superEncoder(forKey: Key(stringValue: "super")!)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            container.key(key)
            return StreamingEncoder(container: container.child())
        }
    }

    struct UnkeyedWriter: UnkeyedEncodingContainer {
        let container: Container
        var codingPath: [any CodingKey] { [] }
        var count = 0

        mutating func encodeNil() throws {
            container.nextElement()
            container.sink.buffer.writeStaticString("null")
            count += 1
        }

        mutating func encode<T: Encodable>(_ value: T) throws {
            container.nextElement()
            try container.sink.write(value)
            count += 1
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            container.nextElement()
            count += 1
            return StreamingEncoder(container: container.child()).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            container.nextElement()
            count += 1
            return StreamingEncoder(container: container.child()).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            container.nextElement()
            count += 1
            return StreamingEncoder(container: container.child())
        }
    }

    struct SingleWriter: SingleValueEncodingContainer {
        let container: Container
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil() throws { container.sink.buffer.writeStaticString("null") }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try container.sink.write(value)
        }
    }
}
