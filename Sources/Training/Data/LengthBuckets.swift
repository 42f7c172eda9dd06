import TensorCore

/// Groups sentence pairs of similar length into micro-batches of about `tokenBudget` padded
/// tokens, the way the paper batches ("sentence pairs were batched together by approximate
/// sequence length").
///
/// Pairs are sorted by padded width `max(source, target + 1)` (ties: by the other side's length,
/// then by index, so the order is a pure function of the data), then cut greedily: a pair joins
/// the current batch while `rows * width <= tokenBudget`. A pair wider than the budget gets a
/// batch of its own.
package enum LengthBuckets {
    /// `lengths[i] = (source tokens, target tokens)`; returns the batches as lists of pair indices.
    package static func batches(lengths: [(source: Int, target: Int)], tokenBudget: Int) -> [[Int]] {
        func width(_ i: Int) -> Int { Swift.max(Swift.max(1, lengths[i].source), lengths[i].target + 1) }
        let order = lengths.indices.sorted { a, b in
            let wa = width(a), wb = width(b)
            if wa != wb { return wa < wb }
            let ta = lengths[a].target, tb = lengths[b].target
            if ta != tb { return ta < tb }
            return a < b
        }
        var batches: [[Int]] = []
        var current: [Int] = []
        var widest = 0
        for i in order {
            let w = Swift.max(widest, width(i))
            if !current.isEmpty && (current.count + 1) * w > tokenBudget {
                batches.append(current)
                current = []
                widest = 0
            }
            current.append(i)
            widest = Swift.max(widest, width(i))
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// A permutation of `0..<count` drawn from `stream` (Fisher-Yates), used to shuffle the batch
    /// order of each epoch.
    package static func permutation(count: Int, stream: inout RandomStream) -> [Int] {
        var p = Array(0..<count)
        var i = count - 1
        while i > 0 {
            let j = stream.int(in: 0..<(i + 1))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }
}
