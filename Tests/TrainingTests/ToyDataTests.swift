import TensorCore
import Training
import XCTest

final class ToyDataTests: XCTestCase {
    private func task(_ kind: ToyTask.Kind = .copy, vocab: Int = 16, maxLength: Int = 16, seed: UInt64 = 1) throws
        -> ToyTask
    {
        try ToyTask(kind: kind, vocabSize: vocab, maxLength: maxLength, seed: seed)
    }

    /// Rows of a batch as (source without padding, target output row, target input row).
    private func rows(_ batch: Batch) -> [(source: [Int32], input: [Int32], output: [Int32])] {
        (0..<batch.batchSize).map { b in
            let s = Array(batch.source[(b * batch.sourceLength)..<((b + 1) * batch.sourceLength)])
            let i = Array(batch.targetInput[(b * batch.targetLength)..<((b + 1) * batch.targetLength)])
            let o = Array(batch.targetOutput[(b * batch.targetLength)..<((b + 1) * batch.targetLength)])
            return (s.filter { $0 != 0 }, i, o)
        }
    }

    /// BOS + y as decoder input, y + EOS as labels, PAD (0) after; sources padded to the longest.
    func testBatchLayoutByHand() {
        let batch = Batch(pairs: [(source: [5, 6, 7], target: [5, 6, 7]), (source: [8], target: [9, 10])])
        XCTAssertEqual(batch.batchSize, 2)
        XCTAssertEqual(batch.sourceLength, 3)
        XCTAssertEqual(batch.targetLength, 4)
        XCTAssertEqual(batch.source, [5, 6, 7, 8, 0, 0])
        XCTAssertEqual(batch.targetInput, [1, 5, 6, 7, 1, 9, 10, 0])
        XCTAssertEqual(batch.targetOutput, [5, 6, 7, 2, 9, 10, 2, 0])
        XCTAssertEqual(batch.targetTokens, 7)
        XCTAssertEqual(batch.paddedTokens, 8)
    }

    func testEmptyTargetIsJustBosAndEos() {
        let batch = Batch(pairs: [(source: [], target: [])])
        XCTAssertEqual(batch.sourceLength, 1)
        XCTAssertEqual(batch.source, [0])
        XCTAssertEqual(batch.targetInput, [1])
        XCTAssertEqual(batch.targetOutput, [2])
        XCTAssertEqual(batch.targetTokens, 1)
    }

    /// A micro-batch is a pure function of (seed, index): the same from any task value, in any
    /// order of requests; other indices and seeds differ.
    func testMicroBatchesAreDeterministic() throws {
        let a = try task(), b = try task()
        let third = a.microBatch(index: 3, tokenBudget: 512)
        _ = b.microBatch(index: 0, tokenBudget: 512)
        XCTAssertEqual(b.microBatch(index: 3, tokenBudget: 512), third)
        XCTAssertEqual(a.microBatch(index: 3, tokenBudget: 512), third)
        XCTAssertNotEqual(a.microBatch(index: 4, tokenBudget: 512), third)
        XCTAssertNotEqual(try task(seed: 2).microBatch(index: 3, tokenBudget: 512), third)
    }

    /// The first pair of micro-batch i is drawn from Philox stream i under the seed: a length
    /// uniform in [1, maxLength], then that many symbols uniform in [4, vocab).
    func testStreamContract() throws {
        let t = try task(.copy, vocab: 16, maxLength: 16, seed: 7)
        var stream = RandomStream(seed: 7, stream: 11)
        let length = stream.int(in: 1..<17)
        let symbols = (0..<length).map { _ in Int32(stream.int(in: 4..<16)) }
        let first = rows(t.microBatch(index: 11, tokenBudget: 256))[0]
        XCTAssertEqual(first.source, symbols)
        XCTAssertEqual(first.output, symbols + [2] + [Int32](repeating: 0, count: first.output.count - length - 1))

        var validationStream = RandomStream(seed: 7, stream: 1 << 62)
        let validationLength = validationStream.int(in: 1..<17)
        let validationSymbols = (0..<validationLength).map { _ in Int32(validationStream.int(in: 4..<16)) }
        XCTAssertEqual(t.validationSet(count: 1)[0].source, validationSymbols)
    }

    /// count * max(padded source, padded target) never exceeds the budget, and the batch is
    /// at least as full as budget / (maxLength + 1) sequences.
    func testTokenBudgetRespected() throws {
        let t = try task(.copy, vocab: 20, maxLength: 12)
        for budget in [13, 64, 100, 1000, 4096] {
            for index in 0..<20 {
                let batch = t.microBatch(index: index, tokenBudget: budget)
                XCTAssertLessThanOrEqual(batch.paddedTokens, budget, "budget \(budget) index \(index)")
                XCTAssertGreaterThanOrEqual(batch.batchSize, budget / 13)
                XCTAssertEqual(batch.sourceLength + 1, batch.targetLength)
            }
        }
        // A budget below one sequence still yields one pair.
        XCTAssertEqual(t.microBatch(index: 0, tokenBudget: 1).batchSize, 1)
    }

    /// Symbols lie in [4, vocab) and lengths in [1, maxLength], and both ends of each range occur.
    func testSymbolAndLengthRanges() throws {
        let t = try task(.copy, vocab: 9, maxLength: 5)
        var symbols = Set<Int32>(), lengths = Set<Int>()
        for index in 0..<30 {
            let batch = t.microBatch(index: index, tokenBudget: 120)
            for row in rows(batch) {
                lengths.insert(row.source.count)
                symbols.formUnion(row.source)
                XCTAssertEqual(row.input[0], 1)
            }
        }
        XCTAssertEqual(symbols, Set(4...8))
        XCTAssertEqual(lengths, Set(1...5))
    }

    /// copy: labels are the source then EOS; reverse: the reversed source then EOS.
    func testCopyAndReverseTargets() throws {
        for kind in ToyTask.Kind.allCases {
            let batch = try task(kind).microBatch(index: 2, tokenBudget: 300)
            XCTAssertGreaterThan(batch.batchSize, 10)
            for row in rows(batch) {
                let expected = kind == .copy ? row.source : Array(row.source.reversed())
                XCTAssertEqual(Array(row.output.prefix(row.source.count)), expected)
                XCTAssertEqual(row.output[row.source.count], 2)
                XCTAssertEqual(Array(row.input[1...row.source.count]), expected)
            }
            XCTAssertEqual(batch.targetTokens, rows(batch).reduce(0) { $0 + $1.source.count + 1 })
        }
        // The same stream gives the same sources for both tasks.
        let copy = rows(try task(.copy).microBatch(index: 5, tokenBudget: 200)).map(\.source)
        let reverse = rows(try task(.reverse).microBatch(index: 5, tokenBudget: 200)).map(\.source)
        XCTAssertEqual(copy, reverse)
    }

    func testValidationSetIsStableAndHeldOut() throws {
        let t = try task(.reverse)
        let ten = t.validationSet(count: 10)
        let five = t.validationSet(count: 5)
        XCTAssertEqual(ten.count, 10)
        XCTAssertEqual(ten.prefix(5).map(\.source), five.map(\.source))
        XCTAssertEqual(ten.prefix(5).map(\.target), five.map(\.target))
        for pair in ten { XCTAssertEqual(pair.target, Array(pair.source.reversed())) }
        // Different streams from training: the first training pairs are not the validation pairs.
        let training = rows(t.microBatch(index: 0, tokenBudget: 10 * 17)).map(\.source)
        XCTAssertNotEqual(Array(training.prefix(10)), ten.map(\.source))
    }

    func testInvalidParametersAreRefused() {
        XCTAssertThrowsError(try ToyTask(kind: .copy, vocabSize: 4, maxLength: 8, seed: 1)) { error in
            XCTAssertEqual(error as? ToyTaskError, .vocabularyTooSmall(4))
            XCTAssertTrue("\(error)".contains("vocab_size"))
        }
        XCTAssertThrowsError(try ToyTask(kind: .reverse, vocabSize: 16, maxLength: 0, seed: 1)) { error in
            XCTAssertEqual(error as? ToyTaskError, .maxLengthTooSmall(0))
        }
    }
}
