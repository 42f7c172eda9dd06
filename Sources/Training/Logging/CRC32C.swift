/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78), the checksum of TFRecord files.
///
/// A different polynomial from `CRC32` (zlib's), so a separate table; byte-at-a-time is plenty for
/// the few hundred bytes of an event record.
package enum CRC32C {
    /// The checksum of `bytes` (crc32c("123456789") = 0xE3069283).
    package static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }

    /// TFRecord's masked form: rotated right by 15 bits plus a constant, so that a CRC stored
    /// inside checksummed data does not checksum to a trivial value.
    package static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// `masked(checksum(bytes))`.
    package static func maskedChecksum(_ bytes: some Sequence<UInt8>) -> UInt32 { masked(checksum(bytes)) }

    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }
}
