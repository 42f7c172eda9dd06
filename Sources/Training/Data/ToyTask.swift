import TensorCore
import TransformerModel

/// A toy task's parameters are outside what it can generate.
package enum ToyTaskError: Error, CustomStringConvertible, Equatable {
    case vocabularyTooSmall(Int)
    case maxLengthTooSmall(Int)
    case minLengthOutOfRange(Int, maxLength: Int)

    package var description: String {
        switch self {
        case .vocabularyTooSmall(let v):
            return "toy task: vocab_size must be at least \(SpecialTokens.count + 1) "
                + "(ids 0-3 are PAD, BOS, EOS, UNK), got \(v)"
        case .maxLengthTooSmall(let n):
            return "toy task: copy_max_len must be at least 1, got \(n)"
        case let .minLengthOutOfRange(n, maxLength):
            return "toy task: copy_min_len must be in [1, copy_max_len = \(maxLength)], got \(n)"
        }
    }
}

/// The synthetic `copy` and `reverse` tasks: sources are symbols drawn uniformly from ids
/// `[4, vocabSize)` with a length uniform in `[1, maxLength]`; the target is the source (copy) or
/// the source reversed (reverse).
///
/// Every micro-batch is a pure function of `(seed, index)`: global micro-batch `index` reads
/// Philox stream `index` under key `seed`, whichever worker asks for it. Validation pairs read
/// streams from `validationStreamBase` up, which no training index reaches.
package struct ToyTask: Sendable, Equatable {
    package enum Kind: String, Sendable, Equatable, CaseIterable {
        case copy, reverse
    }

    package let kind: Kind
    package let vocabSize: Int
    package let maxLength: Int
    /// Shortest source (1 unless `copy_min_len` says otherwise; equal to `maxLength` gives
    /// fixed-shape batches, as benchmarks want).
    package let minLength: Int
    package let seed: UInt64

    /// First Philox stream of the validation set (training indices stay below it).
    package static let validationStreamBase: UInt64 = 1 << 62

    package init(kind: Kind, vocabSize: Int, maxLength: Int, minLength: Int = 1, seed: UInt64) throws(ToyTaskError) {
        guard vocabSize > SpecialTokens.count else { throw .vocabularyTooSmall(vocabSize) }
        guard maxLength >= 1 else { throw .maxLengthTooSmall(maxLength) }
        guard (1...maxLength).contains(minLength) else { throw .minLengthOutOfRange(minLength, maxLength: maxLength) }
        self.kind = kind
        self.vocabSize = vocabSize
        self.maxLength = maxLength
        self.minLength = minLength
        self.seed = seed
    }

    /// Global micro-batch number `index` (>= 0), holding about `tokenBudget` padded tokens:
    /// pairs are drawn in stream order and added while `count * max(sourceLength, targetLength)`
    /// stays within the budget, and there is always at least one pair.
    ///
    /// The first `tokenBudget / (maxLength + 1)` pairs fit whatever their lengths, so they are
    /// taken unconditionally (an unbiased sample); only the extra pairs that fill the rest of the
    /// budget depend on the lengths drawn.
    package func microBatch(index: Int, tokenBudget: Int) -> Batch {
        precondition(index >= 0 && UInt64(index) < ToyTask.validationStreamBase, "micro-batch index out of range")
        var stream = RandomStream(seed: seed, stream: UInt64(index))
        let guaranteed = Swift.max(1, tokenBudget / (maxLength + 1))
        var pairs: [(source: [Int32], target: [Int32])] = []
        pairs.reserveCapacity(guaranteed)
        var longest = 0
        for _ in 0..<guaranteed {
            let pair = nextPair(&stream)
            longest = Swift.max(longest, pair.source.count)
            pairs.append(pair)
        }
        // Sources and targets have equal lengths here, so the padded width is `longest + 1`.
        while true {
            let pair = nextPair(&stream)
            let width = Swift.max(longest, pair.source.count) + 1
            guard (pairs.count + 1) * width <= tokenBudget else { break }
            longest = Swift.max(longest, pair.source.count)
            pairs.append(pair)
        }
        return Batch(pairs: pairs)
    }

    /// `count` held-out pairs; pair `i` is the first pair of stream `validationStreamBase + i`, so
    /// the set grows without changing its first elements.
    package func validationSet(count: Int) -> [(source: [Int32], target: [Int32])] {
        (0..<Swift.max(0, count)).map { i in
            var stream = RandomStream(seed: seed, stream: ToyTask.validationStreamBase + UInt64(i))
            return nextPair(&stream)
        }
    }

    /// Draws a length, then that many symbols.
    func nextPair(_ stream: inout RandomStream) -> (source: [Int32], target: [Int32]) {
        let length = stream.int(in: minLength..<(maxLength + 1))
        var source = [Int32](repeating: 0, count: length)
        for i in 0..<length {
            source[i] = Int32(stream.int(in: SpecialTokens.count..<vocabSize))
        }
        switch kind {
        case .copy: return (source, source)
        case .reverse: return (source, source.reversed())
        }
    }
}
