/// The fixed binary header, the first frame of every message.
///
/// Layout (112 bytes, little-endian; integers are signed 64-bit unless noted):
/// ```
///   0 magic        UInt32 "SWDT"        56 elementOffset  first element of the bucket in its arena
///   4 version      UInt16               64 elementCount   elements in the payload frame
///   6 kind         UInt8  MessageKind   72 totalCount     elements in the whole arena
///   7 payloadType  UInt8  PayloadType   80 value0 \
///   8 flags        UInt32               88 value1  | kind-specific (see each message)
///  12 reserved     UInt32 (0)           96 value2  |
///  16 step                             104 value3 /
///  24 rank
///  32 attempt
///  40 bucketIndex
///  48 bucketCount
/// ```
/// A second frame, when present, holds `elementCount` elements of `payloadType`, raw.
package struct MessageHeader: Sendable, Equatable {
    package static let magic: UInt32 = 0x5444_5753  // bytes "SWDT"
    package static let currentVersion: UInt16 = 1
    package static let byteCount = 112

    package var version = MessageHeader.currentVersion
    package var kind: MessageKind
    package var payloadType: PayloadType = .none
    package var flags: UInt32 = 0
    package var step: Int64 = 0
    package var rank: Int64 = 0
    /// The coordinator's attempt number of the step a work order belongs to (it counts up with
    /// every plan it sends, re-plans included); gradients and statistics echo it, so answers to an
    /// older plan are told apart. 0 in messages that belong to no plan.
    package var attempt: Int64 = 0
    package var bucketIndex: Int64 = 0
    package var bucketCount: Int64 = 0
    package var elementOffset: Int64 = 0
    package var elementCount: Int64 = 0
    package var totalCount: Int64 = 0
    package var values: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)

    package init(kind: MessageKind) { self.kind = kind }

    /// Payload bytes the header announces.
    package var payloadBytes: Int { Int(clamping: elementCount) &* payloadType.elementSize }

    package func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.byteCount)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: version.littleEndian, toByteOffset: 4, as: UInt16.self)
            raw[6] = kind.rawValue
            raw[7] = payloadType.rawValue
            raw.storeBytes(of: flags.littleEndian, toByteOffset: 8, as: UInt32.self)
            let fields = [
                step, rank, attempt, bucketIndex, bucketCount, elementOffset, elementCount, totalCount,
                values.0, values.1, values.2, values.3,
            ]
            for (i, field) in fields.enumerated() {
                raw.storeBytes(of: field.littleEndian, toByteOffset: 16 + 8 * i, as: Int64.self)
            }
        }
        return bytes
    }

    /// Decodes and checks magic, version, kind and payload type (not the kind-specific fields).
    package init(decoding raw: UnsafeRawBufferPointer) throws(ProtocolError) {
        // Magic and version first: a peer of another version may have another header size, and
        // "version 2 is not supported" is the useful message then.
        guard raw.count >= 8 else { throw .headerSize(actual: raw.count, expected: Self.byteCount) }
        let magic = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard magic == Self.magic else { throw .badMagic(magic) }
        version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard version == Self.currentVersion else {
            throw .unsupportedVersion(received: Int(version), supported: Int(Self.currentVersion))
        }
        guard raw.count == Self.byteCount else { throw .headerSize(actual: raw.count, expected: Self.byteCount) }
        guard let kind = MessageKind(rawValue: raw[6]) else { throw .unknownKind(raw[6]) }
        guard let payloadType = PayloadType(rawValue: raw[7]) else { throw .unknownPayloadType(raw[7]) }
        self.kind = kind
        self.payloadType = payloadType
        flags = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        func field(_ i: Int) -> Int64 {
            Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 16 + 8 * i, as: Int64.self))
        }
        step = field(0)
        rank = field(1)
        attempt = field(2)
        bucketIndex = field(3)
        bucketCount = field(4)
        elementOffset = field(5)
        elementCount = field(6)
        totalCount = field(7)
        values = (field(8), field(9), field(10), field(11))
    }

    /// `value` as a count or index, or the error naming `field` when it is negative.
    func nonNegative(_ field: String, _ value: Int64) throws(ProtocolError) -> Int {
        guard value >= 0, let n = Int(exactly: value) else {
            throw .invalidField(kind: kind, field: field, value: value, reason: "is negative")
        }
        return n
    }

    package static func == (a: MessageHeader, b: MessageHeader) -> Bool {
        a.encoded() == b.encoded()
    }
}
