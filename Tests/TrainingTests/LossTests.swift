import Foundation
import TensorCore
import Training
import XCTest

final class LossTests: XCTestCase {
    /// Reference in Double: (lossSum, nllSum) of one row, straight from the definition.
    private func reference(_ z: ArraySlice<Float>, target: Int, smoothing: Double) -> (loss: Double, nll: Double) {
        let values = z.map(Double.init)
        let m = values.max() ?? 0
        let logZ = m + log(values.reduce(0) { $0 + exp($1 - m) })
        let logP = values.map { $0 - logZ }
        let nll = -logP[target]
        let mean = -logP.reduce(0, +) / Double(values.count)
        return ((1 - smoothing) * nll + smoothing * mean, nll)
    }

    private func randomLogits(rows: Int, vocab: Int, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, stream: 0)
        return (0..<(rows * vocab)).map { _ in 3 * rng.normal() }
    }

    /// Row 0: z = [0, 0, ln 2], p = [1/4, 1/4, 1/2], target 2: NLL = ln 2, mean -log p = 5 ln 2 / 3,
    ///   loss = 0.9 ln 2 + 0.1 * 5 ln 2 / 3 = (16/15) ln 2; argmax 2 is correct.
    ///   gradient = p - (0.9 onehot + 0.1/3) = [13/60, 13/60, -13/30].
    /// Row 1: z = [1, 1, 1], target 1: every term is ln 3; argmax (first max) 0 is wrong.
    ///   gradient = 1/3 - (0.9 onehot + 1/30) = [0.3, -0.6, 0.3].
    /// Row 2: pad target: nothing, zero gradient.
    func testHandComputedTwoRowsAndPad() {
        var logits: [Float] = [0, 0, Float(log(2.0)), 1, 1, 1, 5, -3, 7]
        let targets: [Int32] = [2, 1, 0]
        let stats = logits.withUnsafeMutableBufferPointer { z in
            LabelSmoothedCrossEntropy.evaluate(
                logits: z.baseAddress!, targets: targets, rows: 3, vocab: 3,
                smoothing: 0.1, gradientScale: 1)
        }
        XCTAssertEqual(stats.tokens, 2)
        XCTAssertEqual(stats.correct, 1)
        XCTAssertEqual(stats.lossSum, 16.0 / 15.0 * log(2.0) + log(3.0), accuracy: 1e-6)
        XCTAssertEqual(stats.lossSum, 1.837_969_28, accuracy: 1e-6)
        XCTAssertEqual(stats.nllSum, log(6.0), accuracy: 1e-6)
        let expected: [Float] = [13.0 / 60, 13.0 / 60, -13.0 / 30, 0.3, -0.6, 0.3, 0, 0, 0]
        for (i, (g, e)) in zip(logits, expected).enumerated() {
            XCTAssertEqual(g, e, accuracy: 1e-6, "gradient \(i)")
        }
        XCTAssertEqual(Array(logits[6...]), [0, 0, 0])
    }

    /// Without a gradient scale the logits are left exactly as they were.
    func testEvaluationOnlyLeavesLogitsAlone() {
        var logits = randomLogits(rows: 5, vocab: 37, seed: 1)
        let original = logits
        let targets: [Int32] = [4, 0, 36, 1, 9]
        let stats = logits.withUnsafeMutableBufferPointer { z in
            LabelSmoothedCrossEntropy.evaluate(
                logits: z.baseAddress!, targets: targets, rows: 5, vocab: 37,
                smoothing: 0.1, gradientScale: nil)
        }
        XCTAssertEqual(logits, original)
        XCTAssertEqual(stats.tokens, 4)
        var expectedLoss = 0.0, expectedNLL = 0.0
        for (r, t) in targets.enumerated() where t != 0 {
            let ref = reference(original[(r * 37)..<((r + 1) * 37)], target: Int(t), smoothing: 0.1)
            expectedLoss += ref.loss
            expectedNLL += ref.nll
        }
        XCTAssertEqual(stats.lossSum, expectedLoss, accuracy: 1e-5)
        XCTAssertEqual(stats.nllSum, expectedNLL, accuracy: 1e-5)
    }

    /// With smoothing 0 the loss is the plain NLL, -log softmax(z)[y].
    func testNoSmoothingIsPlainNLL() {
        var logits = randomLogits(rows: 4, vocab: 19, seed: 2)
        let original = logits
        let targets: [Int32] = [3, 18, 7, 5]
        let stats = logits.withUnsafeMutableBufferPointer { z in
            LabelSmoothedCrossEntropy.evaluate(
                logits: z.baseAddress!, targets: targets, rows: 4, vocab: 19,
                smoothing: 0, gradientScale: 1)
        }
        XCTAssertEqual(stats.lossSum, stats.nllSum)
        let expected = targets.enumerated().reduce(0.0) { sum, item in
            sum
                + reference(
                    original[(item.offset * 19)..<((item.offset + 1) * 19)], target: Int(item.element), smoothing: 0
                ).nll
        }
        XCTAssertEqual(stats.nllSum, expected, accuracy: 1e-5)
        // The gradient is softmax - onehot: at the target p - 1, elsewhere p.
        let row0 = original[0..<19].map(Double.init)
        let logZ = log(row0.reduce(0) { $0 + exp($1) })
        XCTAssertEqual(Double(logits[3]), exp(row0[3] - logZ) - 1, accuracy: 1e-6)
        XCTAssertEqual(Double(logits[4]), exp(row0[4] - logZ), accuracy: 1e-6)
    }

    /// Central differences of lossSum (in Double, from the Float logits actually used) match the
    /// analytic gradient. Vocab 21 exercises both the 8-lane body and the scalar tail.
    func testGradientMatchesFiniteDifferences() {
        let rows = 3, vocab = 21
        let base = randomLogits(rows: rows, vocab: vocab, seed: 3)
        let targets: [Int32] = [5, 0, 20]
        func lossSum(_ z: [Float]) -> Double {
            var copy = z
            return copy.withUnsafeMutableBufferPointer { p in
                LabelSmoothedCrossEntropy.evaluate(
                    logits: p.baseAddress!, targets: targets, rows: rows, vocab: vocab,
                    smoothing: 0.1, gradientScale: nil
                ).lossSum
            }
        }
        var gradient = base
        _ = gradient.withUnsafeMutableBufferPointer { p in
            LabelSmoothedCrossEntropy.evaluate(
                logits: p.baseAddress!, targets: targets, rows: rows, vocab: vocab,
                smoothing: 0.1, gradientScale: 1)
        }
        for i in 0..<(rows * vocab) {
            var plus = base, minus = base
            plus[i] += 1e-2
            minus[i] -= 1e-2
            let step = Double(plus[i]) - Double(minus[i])
            let numeric = (lossSum(plus) - lossSum(minus)) / step
            XCTAssertEqual(Double(gradient[i]), numeric, accuracy: 2e-4, "logit \(i)")
        }
    }

    /// Each gradient row sums to 1 - (1 - eps) - eps = 0, and a scale multiplies it.
    func testGradientRowsSumToZeroAndScale() {
        let rows = 6, vocab = 64
        let base = randomLogits(rows: rows, vocab: vocab, seed: 4)
        let targets: [Int32] = [7, 63, 4, 0, 12, 33]
        var unit = base, half = base
        let a = unit.withUnsafeMutableBufferPointer { p in
            LabelSmoothedCrossEntropy.evaluate(
                logits: p.baseAddress!, targets: targets, rows: rows, vocab: vocab,
                smoothing: 0.1, gradientScale: 1)
        }
        let b = half.withUnsafeMutableBufferPointer { p in
            LabelSmoothedCrossEntropy.evaluate(
                logits: p.baseAddress!, targets: targets, rows: rows, vocab: vocab,
                smoothing: 0.1, gradientScale: 0.5)
        }
        XCTAssertEqual(a, b)
        for r in 0..<rows {
            let sum = unit[(r * vocab)..<((r + 1) * vocab)].reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(sum, 0, accuracy: 1e-6, "row \(r)")
        }
        for i in 0..<(rows * vocab) { XCTAssertEqual(half[i], unit[i] / 2, accuracy: 1e-7) }
    }

    /// Vocabulary and row count of a real batch: many blocks, SIMD body plus tail; the statistics
    /// match the Double reference and are the same bits for 1 and 2 threads.
    func testLargeVocabularyMatchesReferenceAcrossThreadCounts() {
        let rows = 40, vocab = 8003
        let base = randomLogits(rows: rows, vocab: vocab, seed: 5)
        var rng = RandomStream(seed: 6, stream: 0)
        let targets = (0..<rows).map { r in r % 7 == 0 ? Int32(0) : Int32(rng.int(in: 1..<vocab)) }
        var expectedLoss = 0.0, expectedNLL = 0.0
        for (r, t) in targets.enumerated() where t != 0 {
            let ref = reference(base[(r * vocab)..<((r + 1) * vocab)], target: Int(t), smoothing: 0.1)
            expectedLoss += ref.loss
            expectedNLL += ref.nll
        }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var results: [(LossStatistics, [Float])] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            var z = base
            let stats = z.withUnsafeMutableBufferPointer { p in
                LabelSmoothedCrossEntropy.evaluate(
                    logits: p.baseAddress!, targets: targets, rows: rows, vocab: vocab,
                    smoothing: 0.1, gradientScale: 1)
            }
            results.append((stats, z))
        }
        XCTAssertEqual(results[0].0, results[1].0)
        XCTAssertEqual(results[0].1, results[1].1)
        let stats = results[0].0
        XCTAssertEqual(stats.tokens, targets.filter { $0 != 0 }.count)
        XCTAssertEqual(stats.lossSum, expectedLoss, accuracy: 1e-4)
        XCTAssertEqual(stats.nllSum, expectedNLL, accuracy: 1e-4)
    }

    /// Predictions: the first maximal logit is the prediction, as torch.argmax.
    func testAccuracyCountsArgmax() {
        var logits: [Float] = [
            0, 2, 2, 1,  // tie: index 1 wins
            9, 0, 0, 0,
            0, 0, 0, 3,
        ]
        let targets: [Int32] = [1, 1, 3]
        let stats = logits.withUnsafeMutableBufferPointer { p in
            LabelSmoothedCrossEntropy.evaluate(
                logits: p.baseAddress!, targets: targets, rows: 3, vocab: 4,
                smoothing: 0.1, gradientScale: nil)
        }
        XCTAssertEqual(stats.correct, 2)
        XCTAssertEqual(stats.tokens, 3)
    }

    func testNonFiniteLogitGivesNaNLoss() {
        var logits: [Float] = [0, .nan, 1, 2, 0, 1]
        let targets: [Int32] = [2, 1]
        let stats = logits.withUnsafeMutableBufferPointer { p in
            LabelSmoothedCrossEntropy.evaluate(
                logits: p.baseAddress!, targets: targets, rows: 2, vocab: 3,
                smoothing: 0, gradientScale: 1)
        }
        XCTAssertTrue(stats.lossSum.isNaN)
        XCTAssertTrue(logits[0].isNaN)
        XCTAssertFalse(logits[3].isNaN)
    }

    /// Statistics combine by addition; derived means use the token count.
    func testStatisticsCombine() {
        let a = LossStatistics(lossSum: 3, nllSum: 2, tokens: 4, correct: 1)
        let b = LossStatistics(lossSum: 1, nllSum: 2, tokens: 4, correct: 5)
        let sum = a + b
        XCTAssertEqual(sum, LossStatistics(lossSum: 4, nllSum: 4, tokens: 8, correct: 6))
        XCTAssertEqual(sum.meanLoss, 0.5)
        XCTAssertEqual(sum.meanNLL, 0.5)
        XCTAssertEqual(sum.perplexity, exp(0.5), accuracy: 1e-15)
        XCTAssertEqual(sum.tokenAccuracy, 0.75)
        XCTAssertEqual(LossStatistics.zero.meanLoss, 0)
    }
}
