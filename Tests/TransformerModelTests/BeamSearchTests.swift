import TensorCore
import TransformerModel
import XCTest

/// Reference scores: each prefix decoded from scratch by a fresh `IncrementalDecoder` (teacher
/// forcing; its logits equal a full forward's, see DecodingTests), log-softmax in Double. A full
/// forward is not used because it treats a generated PAD token in the target as padding.
struct ReferenceScorer {
    let model: Transformer

    /// log p(next token | source, BOS + prefix) for every token of the vocabulary.
    func nextLogProbabilities(source: [Int32], prefix: [Int32]) throws -> [Double] {
        let v = model.config.vocabSize
        let decoder = IncrementalDecoder(model: model)
        try decoder.start(
            source: source.isEmpty ? [SpecialTokens.pad] : source, batchSize: 1,
            sourceLength: max(1, source.count), maxSteps: prefix.count + 1)
        var logits = try decoder.step([SpecialTokens.bos])
        for t in prefix { logits = try decoder.step([t]) }
        let row = (0..<v).map { Double(logits[$0]) }
        let m = row.max() ?? 0
        let logNorm = m + log(row.reduce(0) { $0 + exp($1 - m) })
        return row.map { $0 - logNorm }
    }

    /// Total log-probability of `tokens` (plus EOS when `endsWithEOS`).
    func logProbability(source: [Int32], tokens: [Int32], endsWithEOS: Bool) throws -> Double {
        var total = 0.0
        for (i, t) in tokens.enumerated() {
            total += try nextLogProbabilities(source: source, prefix: Array(tokens[..<i]))[Int(t)]
        }
        if endsWithEOS { total += try nextLogProbabilities(source: source, prefix: tokens)[Int(SpecialTokens.eos)] }
        return total
    }

    /// Best hypothesis over every output of at most `maxLength` tokens, by score lp-normalised with alpha.
    func exhaustiveBest(source: [Int32], maxLength: Int, alpha: Double) throws -> BeamHypothesis {
        var best = BeamHypothesis(tokens: [], endsWithEOS: false, logProbability: -.infinity, score: -.infinity)
        func consider(_ h: BeamHypothesis) { if h.score > best.score { best = h } }
        func expand(_ prefix: [Int32], _ logProb: Double) throws {
            let next = try nextLogProbabilities(source: source, prefix: prefix)
            let n = prefix.count + 1
            let lp = BeamSearchDecoder.lengthPenalty(n, alpha: alpha)
            for (j, l) in next.enumerated() {
                let total = logProb + l
                if Int32(j) == SpecialTokens.eos {
                    consider(
                        BeamHypothesis(tokens: prefix, endsWithEOS: true, logProbability: total, score: total / lp))
                } else if n == maxLength {
                    consider(
                        BeamHypothesis(
                            tokens: prefix + [Int32(j)], endsWithEOS: false, logProbability: total, score: total / lp))
                } else {
                    try expand(prefix + [Int32(j)], total)
                }
            }
        }
        try expand([], 0)
        return best
    }

    func greedyScore(source: [Int32], output: [Int32], maxLength: Int) throws -> Double {
        try logProbability(source: source, tokens: output, endsWithEOS: output.count < maxLength)
    }
}

/// A small random model with a flattened, EOS-friendly output: the shared embedding is scaled by
/// `embeddingScale` (an unmodified tiny random model mostly repeats its input token) and the EOS row
/// by `eosScale` in addition (an unmodified random model almost never ends a sentence).
func decodingTestModel(
    vocab: Int, seed: UInt64, maxLen: Int = 12, norm: NormPlacement = .pre,
    embeddingScale: Float = 0.3, eosScale: Float = 4
) -> Transformer {
    let d = 16
    let m = Transformer(
        config: ModelConfig(
            vocabSize: vocab, dModel: d, heads: 2, dFF: 32, encoderLayers: 1, decoderLayers: 2,
            dropout: 0, maxLen: maxLen, norm: norm), seed: seed)
    let table = m.arena.ref("embedding.weight").value
    for i in 0..<(vocab * d) { table[i] *= embeddingScale }
    for i in 0..<d { table[Int(SpecialTokens.eos) * d + i] *= eosScale }
    return m
}

final class BeamSearchTests: XCTestCase {
    private func model(vocab: Int, seed: UInt64, maxLen: Int = 12, norm: NormPlacement = .pre) -> Transformer {
        decodingTestModel(vocab: vocab, seed: seed, maxLen: maxLen, norm: norm)
    }

    private let sources: [[Int32]] = [[4, 5, 6], [7], [5, 5, 4, 7, 6], [6, 4], [], [7, 6, 5, 4]]

    func testWidthOneEqualsGreedy() throws {
        var withEOS = 0, total = 0
        for seed in UInt64(1)...6 {
            for (vocab, eosScale) in [(8, Float(2)), (8, 3), (12, 5)] {
                let norm: NormPlacement = seed % 2 == 0 ? .post : .pre
                let m = decodingTestModel(vocab: vocab, seed: seed, norm: norm, eosScale: eosScale)
                let greedy = try GreedyDecoder(model: m).decode(sources, maxLength: 9)
                for alpha in [0.0, 0.6, 2.0] {
                    let beam = try BeamSearchDecoder(model: m, beamWidth: 1, lengthPenalty: alpha).decode(
                        sources, maxLength: 9)
                    XCTAssertEqual(beam, greedy, "seed \(seed) vocab \(vocab) EOS scale \(eosScale) alpha \(alpha)")
                }
                withEOS += greedy.filter { $0.count < 9 }.count
                total += greedy.count
            }
        }
        // Both endings (EOS and the length limit) are exercised.
        print("greedy outputs ending with EOS: \(withEOS) of \(total)")
        XCTAssertGreaterThan(withEOS, 0)
        XCTAssertLessThan(withEOS, total)
    }

    /// With K = 56 = 7 live prefixes x 8 tokens, every candidate of every non-final step is kept
    /// (V = 8, at most 3 tokens), and at the last step all candidates share one length, so beam
    /// search is exact. (K = V alone would not be: after step 2 it keeps 8 of 49 prefixes.)
    func testMatchesExhaustiveSearchWhenTheBeamHoldsEveryPrefix() throws {
        let m = decodingTestModel(vocab: 8, seed: 2, eosScale: 8)
        let scorer = ReferenceScorer(model: m)
        var lengthChanged = 0
        for alpha in [0.0, 1.0, 3.0] {
            let found = try BeamSearchDecoder(model: m, beamWidth: 56, lengthPenalty: alpha).search(
                sources, maxLength: 3)
            for (s, source) in sources.enumerated() {
                let best = try scorer.exhaustiveBest(source: source, maxLength: 3, alpha: alpha)
                XCTAssertEqual(found[s].tokens, best.tokens, "source \(s) alpha \(alpha)")
                XCTAssertEqual(found[s].endsWithEOS, best.endsWithEOS)
                XCTAssertEqual(found[s].logProbability, best.logProbability, accuracy: 1e-4)
                XCTAssertEqual(found[s].score, best.score, accuracy: 1e-4)
                if alpha == 3 {
                    let plain = try scorer.exhaustiveBest(source: source, maxLength: 3, alpha: 0)
                    if plain.predictions < best.predictions { lengthChanged += 1 }
                }
            }
        }
        // The length penalty changes the choice towards longer outputs for at least one source.
        XCTAssertGreaterThan(lengthChanged, 0)
    }

    func testWiderBeamsScoreAtLeastGreedyAndAtMostTheOptimum() throws {
        let m = model(vocab: 8, seed: 11)
        let scorer = ReferenceScorer(model: m)
        let greedy = try GreedyDecoder(model: m).decode(sources, maxLength: 4)
        for (s, source) in sources.enumerated() {
            let greedyScore = try scorer.greedyScore(source: source, output: greedy[s], maxLength: 4)
            let optimum = try scorer.exhaustiveBest(source: source, maxLength: 4, alpha: 0).logProbability
            for k in [2, 3, 4, 8] {
                let h = try BeamSearchDecoder(model: m, beamWidth: k, lengthPenalty: 0).search([source], maxLength: 4)[
                    0]
                let reference = try scorer.logProbability(source: source, tokens: h.tokens, endsWithEOS: h.endsWithEOS)
                XCTAssertEqual(h.logProbability, reference, accuracy: 1e-4, "source \(s) K \(k)")
                // Not a theorem for beam search in general; holds for these fixed seeds.
                XCTAssertGreaterThanOrEqual(h.logProbability, greedyScore - 1e-5, "source \(s) K \(k)")
                XCTAssertLessThanOrEqual(h.logProbability, optimum + 1e-5, "source \(s) K \(k)")
            }
        }
    }

    func testBatchedEqualsOneSentenceAtATime() throws {
        let m = model(vocab: 11, seed: 21)
        let beam = try BeamSearchDecoder(model: m, beamWidth: 4)
        let batched = try beam.search(sources, maxLength: 8)
        for (s, source) in sources.enumerated() {
            let alone = try beam.search([source], maxLength: 8)[0]
            XCTAssertEqual(batched[s].tokens, alone.tokens, "source \(s)")
            XCTAssertEqual(batched[s].score, alone.score, accuracy: 1e-4)
        }
    }

    /// After reorder, a row continues its parent's history: its next logits equal a fresh decoder's
    /// fed with the parent's tokens.
    func testReorderCopiesTheParentHistory() throws {
        let m = model(vocab: 9, seed: 3)
        let dec = IncrementalDecoder(model: m)
        try dec.start(source: [4, 5, 6], batchSize: 1, sourceLength: 3, maxSteps: 4, repeats: 3)
        XCTAssertEqual(dec.rows, 3)
        try dec.step([1, 1, 1])
        try dec.step([4, 5, 6])
        try [Int32(2), 0, 0].withUnsafeBufferPointer { try dec.reorder(parents: $0) }
        let logits = Array(UnsafeBufferPointer(start: try dec.step([7, 7, 8]), count: 3 * 9))
        for (row, history) in [(0, [Int32(1), 6, 7]), (1, [1, 4, 7]), (2, [1, 4, 8])] {
            let fresh = IncrementalDecoder(model: m)
            try fresh.start(source: [4, 5, 6], batchSize: 1, sourceLength: 3, maxSteps: 4)
            var expected: UnsafeMutablePointer<Float>?
            for t in history { expected = try fresh.step([t]) }
            for j in 0..<9 {
                XCTAssertEqual(logits[row * 9 + j], expected?[j] ?? .nan, accuracy: 1e-5, "row \(row) token \(j)")
            }
        }
    }

    func testInvalidSettingsAreTypedErrors() {
        let m = model(vocab: 8, seed: 1)
        XCTAssertThrowsError(try BeamSearchDecoder(model: m, beamWidth: 0)) { e in
            XCTAssertEqual(e as? DecodingError, .invalidBeamWidth(0))
            XCTAssertEqual("\(e)", "beam width 0 must be at least 1")
        }
        XCTAssertThrowsError(try BeamSearchDecoder(model: m, beamWidth: 2, lengthPenalty: -1)) { e in
            XCTAssertEqual("\(e)", "length penalty alpha -1.0 must be a finite number >= 0")
        }
        XCTAssertThrowsError(try BeamSearchDecoder(model: m, beamWidth: 2).decode([[4, 99]], maxLength: 3)) { e in
            XCTAssertEqual("\(e)", "source token 99 at position 1 is outside the vocabulary [0, 8)")
        }
    }

    func testVectorisedLogNormalizerMatchesDouble() {
        var rng = RandomStream(seed: 4, stream: 1)
        for count in [1, 7, 8, 13, 8000] {
            let row = (0..<count).map { i in i % 5 == 0 ? -200 : rng.uniform() * 40 - 20 }
            let m = row.max() ?? 0
            let exact = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1) - Double(m)) })
            let fast = row.withUnsafeBufferPointer {
                LogSoftmax.logNormalizer($0.baseAddress!, count: count, maximum: m)
            }
            XCTAssertEqual(fast, exact, accuracy: 1e-6 * max(1, abs(exact)), "count \(count)")
        }
        let single: [Float] = [3]
        XCTAssertEqual(
            single.withUnsafeBufferPointer { LogSoftmax.logNormalizer($0.baseAddress!, count: 1, maximum: 3) }, 3,
            accuracy: 1e-7)
        // log(e^0 + e^-ln 3 ... ) = log(1 + 1/3 + 2/3) = log 2.
        let known: [Float] = [0, -Float(log(3.0)), Float(log(2.0 / 3.0))]
        XCTAssertEqual(
            known.withUnsafeBufferPointer { LogSoftmax.logNormalizer($0.baseAddress!, count: 3, maximum: 0) }, log(2.0),
            accuracy: 1e-7)
    }

    func testLengthPenaltyValues() {
        XCTAssertEqual(BeamSearchDecoder.lengthPenalty(1, alpha: 0.6), 1, accuracy: 1e-15)
        XCTAssertEqual(BeamSearchDecoder.lengthPenalty(7, alpha: 0.5), 2.0.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(BeamSearchDecoder.lengthPenalty(13, alpha: 1), 3, accuracy: 1e-15)
        XCTAssertEqual(BeamSearchDecoder.lengthPenalty(40, alpha: 0), 1)
    }
}
