/// Why received frames are not a valid message. A peer sending these is broken or speaks another
/// protocol; the message is dropped (and the peer refused, for a handshake).
package enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    case noFrames
    /// The header frame is shorter than its fixed size (or longer).
    case headerSize(actual: Int, expected: Int)
    case badMagic(UInt32)
    /// The peer speaks another protocol version.
    case unsupportedVersion(received: Int, supported: Int)
    case unknownKind(UInt8)
    case unknownPayloadType(UInt8)
    /// The payload type is not the one this kind of message carries.
    case wrongPayloadType(kind: MessageKind, expected: [PayloadType], actual: PayloadType)
    case frameCount(kind: MessageKind, expected: Int, actual: Int)
    /// The payload frame's size does not match `elementCount` x element size.
    case payloadSize(kind: MessageKind, expectedBytes: Int, actualBytes: Int)
    /// A header field is out of range (negative, or a bucket outside its arena, ...).
    case invalidField(kind: MessageKind, field: String, value: Int64, reason: String)
    case invalidText(kind: MessageKind)
    case invalidJSON(kind: MessageKind, reason: String)
    /// A tensor bucket describes an arena of another size than the receiver's.
    case arenaSizeMismatch(message: Int, local: Int)

    package var description: String {
        switch self {
        case .noFrames: return "empty message"
        case .headerSize(let actual, let expected): return "header frame has \(actual) bytes, expected \(expected)"
        case .badMagic(let magic):
            return
                "not a message of this protocol (magic 0x\(String(magic, radix: 16)), expected 0x\(String(MessageHeader.magic, radix: 16)))"
        case .unsupportedVersion(let received, let supported):
            return "protocol version \(received) is not supported (this program speaks version \(supported))"
        case .unknownKind(let code): return "unknown message kind \(code)"
        case .unknownPayloadType(let code): return "unknown payload type \(code)"
        case .wrongPayloadType(let kind, let expected, let actual):
            return
                "\(kind) message carries \(actual) payload, expected \(expected.map(\.description).joined(separator: " or "))"
        case .frameCount(let kind, let expected, let actual):
            return "\(kind) message has \(actual) frames, expected \(expected)"
        case .payloadSize(let kind, let expectedBytes, let actualBytes):
            return "\(kind) payload has \(actualBytes) bytes but its header announces \(expectedBytes)"
        case .invalidField(let kind, let field, let value, let reason):
            return "\(kind) message: \(field) = \(value) \(reason)"
        case .invalidText(let kind): return "\(kind) message: payload is not valid UTF-8"
        case .invalidJSON(let kind, let reason): return "\(kind) message: invalid JSON payload: \(reason)"
        case .arenaSizeMismatch(let message, let local):
            return "the tensor bucket belongs to an arena of \(message) values, this model has \(local)"
        }
    }
}
