/// An open-addressing hash map from a token pair (left << 32 | right) to its merge (rank, result).
///
/// Encoding looks up every adjacent pair of every word, several times per word; a multiplicative hash
/// with linear probing is several times faster than `Dictionary`'s seeded SipHash for this.
struct PairTable: Sendable {
    private static let emptyKey = UInt64.max
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var results: [Int32]
    private let shift: UInt64
    private let mask: Int

    /// A table sized for `count` entries (load factor at most 1/2).
    init(capacityFor count: Int) {
        var bits = 4
        while (1 << bits) < 2 * max(count, 1) { bits += 1 }
        keys = Array(repeating: Self.emptyKey, count: 1 << bits)
        ranks = Array(repeating: 0, count: 1 << bits)
        results = Array(repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
        mask = (1 << bits) - 1
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// Inserts or replaces the entry for `key` (ids are non-negative, so no key equals `emptyKey`).
    mutating func set(_ key: UInt64, rank: Int32, result: Int32) {
        var i = slot(key)
        while keys[i] != Self.emptyKey && keys[i] != key { i = (i + 1) & mask }
        keys[i] = key
        ranks[i] = rank
        results[i] = result
    }

    /// The merge for `key`, as (rank, result), or nil.
    @inline(__always) func get(_ key: UInt64) -> (rank: Int32, result: Int32)? {
        var i = slot(key)
        while true {
            let k = keys[i]
            if k == key { return (ranks[i], results[i]) }
            if k == Self.emptyKey { return nil }
            i = (i + 1) & mask
        }
    }
}
