/// CRC-32 (IEEE 802.3, the zlib/gzip/PNG checksum: reflected polynomial 0xEDB88320), computed
/// slicing-by-8.
///
/// Checkpoints store this checksum so that anyone can verify a file without our code
/// (`python3 -c "import zlib,sys; print('%08x' % zlib.crc32(open(sys.argv[1],'rb').read()))" FILE`).
package struct CRC32: Sendable {
    /// The running register (the complement of the checksum of the bytes seen so far).
    private var register: UInt32 = 0xFFFF_FFFF

    package init() {}

    /// The checksum of all bytes passed to `update` so far.
    package var value: UInt32 { ~register }

    /// The checksum as 8 lowercase hexadecimal digits, as stored in `state.json`.
    package var hex: String { CRC32.hex(value) }

    /// A checksum as 8 lowercase hexadecimal digits.
    package static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// The checksum of one buffer.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    package static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Continues the checksum over `bytes` (chunks may be fed in any sizes).
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        register = CRC32.table.withUnsafeBufferPointer { table in
            CRC32.run(register, base, bytes.count, table.baseAddress.unsafelyUnwrapped)
        }
    }

    package mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Eight bytes per iteration through eight 256-entry tables (Intel's slicing-by-8).
    private static func run(
        _ start: UInt32, _ base: UnsafeRawPointer, _ count: Int,
        _ t: UnsafePointer<UInt32>
    ) -> UInt32 {
        var crc = start
        var p = base
        var n = count
        while n >= 8 {
            let lo = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ crc
            let hi = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            crc =
                t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            p += 8
            n -= 8
        }
        while n > 0 {
            crc = t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
            p += 1
            n -= 1
        }
        return crc
    }

    /// Table k maps a byte to its contribution k bytes further along.
    private static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()
}
