/// Clipped n-gram matches for n = 1...maxOrder between a hypothesis and a reference given as small
/// integer codes (per-pair ids of tokens or characters), with each n-gram packed into one UInt64.
///
/// Codes are 1..<2^bits (never 0), so an n-gram of order n has exactly n non-zero digits and
/// packed n-grams of different orders never collide. Counting uses a dictionary of reference
/// counts that hypothesis n-grams use up, which is min(hypothesis count, reference count) per
/// n-gram: BLEU's clipping and chrF's match count. (Hashing beats sorting in debug builds, where
/// the generic sort is slow, and is as fast in release.)
enum PackedNGrams {
    /// Whether `distinctCodes` codes of `maxOrder`-grams fit: codes 1...distinctCodes in `bits`.
    static func bits(distinctCodes: Int, maxOrder: Int) -> Int? {
        var bits = 1
        while (1 << bits) <= distinctCodes { bits += 1 }
        return bits * maxOrder <= 64 ? bits : nil
    }

    /// Adds the matches of order n to `matches[n - 1]`.
    static func addMatches(
        hypothesis h: [UInt64], reference r: [UInt64], maxOrder: Int, bits: Int,
        into matches: inout [Int]
    ) {
        var hypGrams = h, refGrams = r  // after step n: the n-gram starting at each position
        var counts: [UInt64: Int] = [:]
        counts.reserveCapacity(r.count)
        var n = 1
        while n <= maxOrder, n <= h.count, n <= r.count {
            if n > 1 {
                var i = 0
                while i + n <= h.count {
                    hypGrams[i] = hypGrams[i] << UInt64(bits) | h[i + n - 1]
                    i += 1
                }
                i = 0
                while i + n <= r.count {
                    refGrams[i] = refGrams[i] << UInt64(bits) | r[i + n - 1]
                    i += 1
                }
            }
            counts.removeAll(keepingCapacity: true)
            var i = 0
            while i + n <= r.count {
                counts[refGrams[i], default: 0] += 1
                i += 1
            }
            var matched = 0
            i = 0
            while i + n <= h.count {
                if let k = counts.index(forKey: hypGrams[i]), counts.values[k] > 0 {
                    counts.values[k] -= 1
                    matched += 1
                }
                i += 1
            }
            matches[n - 1] += matched
            n += 1
        }
    }

    /// Per-pair codes 1, 2, ... for the distinct elements of `a` and `b` (shared numbering).
    static func codes<T: Hashable>(_ a: [T], _ b: [T]) -> (a: [UInt64], b: [UInt64], distinct: Int) {
        var ids: [T: UInt64] = [:]
        ids.reserveCapacity(a.count + b.count)
        func code(_ x: T) -> UInt64 {
            if let id = ids[x] { return id }
            let id = UInt64(ids.count + 1)
            ids[x] = id
            return id
        }
        let ca = a.map(code), cb = b.map(code)
        return (ca, cb, ids.count)
    }
}
