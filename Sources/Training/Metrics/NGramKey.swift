/// An n-gram packed into 128 bits so that n-grams of one order compare as plain integers: up to
/// four 32-bit token ids (BLEU) or up to six 21-bit code points (chrF).
struct NGramKey: Comparable {
    var high: UInt64
    var low: UInt64

    static func < (a: NGramKey, b: NGramKey) -> Bool { a.high != b.high ? a.high < b.high : a.low < b.low }

    /// Every n-gram of order `n` (1...4) of the token ids `t`.
    static func words(_ t: [UInt32], order n: Int) -> [NGramKey] {
        guard t.count >= n else { return [] }
        var keys: [NGramKey] = []
        keys.reserveCapacity(t.count - n + 1)
        for i in 0...(t.count - n) {
            var key = NGramKey(high: 0, low: 0)
            for k in 0..<n {
                let v = UInt64(t[i + k])
                switch k {
                case 0: key.high |= v << 32
                case 1: key.high |= v
                case 2: key.low |= v << 32
                default: key.low |= v
                }
            }
            keys.append(key)
        }
        return keys
    }

    /// Every character n-gram of order `n` (1...6) of `s`.
    static func characters(_ s: [Unicode.Scalar], order n: Int) -> [NGramKey] {
        guard s.count >= n else { return [] }
        var keys: [NGramKey] = []
        keys.reserveCapacity(s.count - n + 1)
        for i in 0...(s.count - n) {
            var key = NGramKey(high: 0, low: 0)
            for k in 0..<n {
                let v = UInt64(s[i + k].value)  // < 2^21
                if k < 3 { key.high |= v << (21 * UInt64(k)) } else { key.low |= v << (21 * UInt64(k - 3)) }
            }
            keys.append(key)
        }
        return keys
    }

    /// The size of the multiset intersection of `a` and `b`: the sum over distinct n-grams of
    /// min(count in a, count in b), i.e. BLEU's clipped matches and chrF's matches. Sorts both.
    static func matches(_ a: inout [NGramKey], _ b: inout [NGramKey]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        a.sort()
        b.sort()
        var i = 0, j = 0, matched = 0
        while i < a.count, j < b.count {
            if a[i] == b[j] {
                matched += 1
                i += 1
                j += 1
            } else if a[i] < b[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return matched
    }
}
