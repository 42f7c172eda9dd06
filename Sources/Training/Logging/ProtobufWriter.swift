/// The handful of protocol-buffer wire encodings a TensorBoard event needs (varint, 64-bit,
/// 32-bit and length-delimited fields), and a reader for the same, so no dependency is needed.
/// Wire format: https://protobuf.dev/programming-guides/encoding/
package struct ProtobufWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    package mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// An int64 field (negative numbers take ten bytes, as protobuf's two's-complement varints do).
    package mutating func int64(_ field: Int, _ value: Int64) {
        key(field, 0)
        varint(UInt64(bitPattern: value))
    }

    package mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, 2)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    package mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }
}

/// One field as read off the wire.
package enum ProtobufField: Equatable {
    case varint(UInt64)
    case fixed64(UInt64)
    case fixed32(UInt32)
    case bytes(ArraySlice<UInt8>)
}

/// Reads the top-level fields of one message; every length is checked against the buffer.
package struct ProtobufReader {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    package init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    package struct Malformed: Error, CustomStringConvertible {
        package let offset: Int
        package let reason: String
        package var description: String { "malformed protocol buffer at byte \(offset): \(reason)" }
    }

    private mutating func readVarint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw Malformed(offset: position, reason: "truncated varint") }
            guard shift < 64 else { throw Malformed(offset: position, reason: "varint longer than 10 bytes") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    private mutating func take(_ count: Int) throws(Malformed) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.endIndex - position >= count else {
            throw Malformed(offset: position, reason: "field of \(count) bytes runs past the end")
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private static func littleEndian(_ slice: ArraySlice<UInt8>) -> UInt64 {
        slice.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The next field number and value, or nil at the end of the message.
    package mutating func next() throws(Malformed) -> (field: Int, value: ProtobufField)? {
        guard position < bytes.endIndex else { return nil }
        let start = position
        let key = try readVarint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0 else { throw Malformed(offset: start, reason: "field number 0") }
        switch key & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1: return (field, .fixed64(Self.littleEndian(try take(8))))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(Int.max) else { throw Malformed(offset: position, reason: "length \(length)") }
            return (field, .bytes(try take(Int(length))))
        case 5: return (field, .fixed32(UInt32(truncatingIfNeeded: Self.littleEndian(try take(4)))))
        default: throw Malformed(offset: start, reason: "unsupported wire type \(key & 7)")
        }
    }
}
