/// TFRecord framing, the container of TensorBoard event files: for each record, its length
/// (uint64, little-endian), the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of
/// the data (both CRCs uint32 little-endian).
package enum TFRecord {
    /// One framed record.
    package static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = littleEndian(UInt64(data.count))
        out += length
        out += littleEndian(CRC32C.maskedChecksum(length))
        out += data
        out += littleEndian(CRC32C.maskedChecksum(data))
        return out
    }

    private static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// Why reading stopped before the end of a file.
    package enum Problem: Error, Equatable, CustomStringConvertible {
        /// The file ends inside a record: what a process killed while writing leaves behind.
        case truncated(offset: Int)
        /// A checksum does not match: the bytes were damaged.
        case corrupt(offset: Int, reason: String)

        package var description: String {
            switch self {
            case .truncated(let offset): return "file ends inside the record at byte \(offset)"
            case let .corrupt(offset, reason): return "record at byte \(offset): \(reason)"
            }
        }
    }

    /// The records of a whole file, in order, up to the first incomplete or damaged one.
    package static func records(in bytes: [UInt8]) -> (records: [ArraySlice<UInt8>], problem: Problem?) {
        var records: [ArraySlice<UInt8>] = []
        var offset = 0
        func uint32(at i: Int) -> UInt32 { bytes[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { return (records, .truncated(offset: offset)) }
            let lengthBytes = bytes[offset..<(offset + 8)]
            guard CRC32C.maskedChecksum(lengthBytes) == uint32(at: offset + 8) else {
                return (records, .corrupt(offset: offset, reason: "length checksum mismatch"))
            }
            let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let dataStart = offset + 12
            guard length <= UInt64(bytes.count - dataStart), bytes.count - dataStart - Int(length) >= 4 else {
                return (records, .truncated(offset: offset))
            }
            let data = bytes[dataStart..<(dataStart + Int(length))]
            guard CRC32C.maskedChecksum(data) == uint32(at: data.endIndex) else {
                return (records, .corrupt(offset: offset, reason: "data checksum mismatch"))
            }
            records.append(data)
            offset = data.endIndex + 4
        }
        return (records, nil)
    }
}
