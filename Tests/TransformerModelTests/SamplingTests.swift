import TensorCore
import TransformerModel
import XCTest

final class SamplingTests: XCTestCase {
    private let sources: [[Int32]] = [[4, 5, 6], [7], [5, 5, 4, 7, 6], [6, 4], [], [7, 6, 5, 4]]

    func testTopOneAndVanishingTemperatureAndTinyNucleusEqualGreedy() throws {
        for seed in [UInt64(1), 2, 3] {
            let m = decodingTestModel(vocab: 10, seed: seed)
            let greedy = try GreedyDecoder(model: m).decode(sources, maxLength: 9)
            XCTAssertEqual(try SamplingDecoder(model: m, topK: 1, seed: 7).decode(sources, maxLength: 9), greedy)
            XCTAssertEqual(
                try SamplingDecoder(model: m, temperature: 1e-6, seed: 7).decode(sources, maxLength: 9), greedy)
            XCTAssertEqual(try SamplingDecoder(model: m, topP: 1e-6, seed: 7).decode(sources, maxLength: 9), greedy)
        }
    }

    func testReproducibleForASeedAndDifferentForAnother() throws {
        let m = decodingTestModel(vocab: 10, seed: 4)
        let a = try SamplingDecoder(model: m, seed: 42).decode(sources, maxLength: 9)
        XCTAssertEqual(try SamplingDecoder(model: m, seed: 42).decode(sources, maxLength: 9), a)
        XCTAssertNotEqual(try SamplingDecoder(model: m, seed: 43).decode(sources, maxLength: 9), a)
        // A sentence's draws depend on its index, not on the rest of the batch.
        XCTAssertEqual(
            try SamplingDecoder(model: m, seed: 42).decode(Array(sources.prefix(2)), maxLength: 9), Array(a.prefix(2)))
    }

    /// top-k 0 and top-p 1 mean unrestricted: equal to top-k = V, and to an inverse-CDF draw over
    /// softmax(logits / T) of full forward passes with the decoder's own uniform numbers.
    func testUnrestrictedMatchesReferenceSampler() throws {
        let m = decodingTestModel(vocab: 10, seed: 5)
        let scorer = ReferenceScorer(model: m)
        let t: Float = 1.5
        let sampled = try SamplingDecoder(model: m, temperature: t, seed: 9).decode(sources, maxLength: 6)
        XCTAssertEqual(
            try SamplingDecoder(model: m, temperature: t, topK: 10, topP: 1, seed: 9).decode(sources, maxLength: 6),
            sampled)
        var distinctOutputs = Set<[Int32]>()
        for (s, source) in sources.enumerated() {
            var prefix: [Int32] = []
            for step in 0..<6 {
                let logp = try scorer.nextLogProbabilities(source: source, prefix: prefix)
                let w = logp.map { exp($0 / Double(t)) }
                let target = Double(SamplingDecoder.uniform(seed: 9, sentence: s, step: step)) * w.reduce(0, +)
                var cumulative = 0.0, token = Int32(w.count - 1)
                for (j, x) in w.enumerated() {
                    cumulative += x
                    if cumulative > target {
                        token = Int32(j)
                        break
                    }
                }
                if token == SpecialTokens.eos { break }
                prefix.append(token)
            }
            XCTAssertEqual(sampled[s], prefix, "source \(s)")
            distinctOutputs.insert(prefix)
        }
        XCTAssertGreaterThan(distinctOutputs.count, 3)
    }

    /// Every token drawn with top-k 2 is one of the two most likely tokens after its prefix.
    func testTopKKeepsOnlyTheKMostLikelyTokens() throws {
        let m = decodingTestModel(vocab: 10, seed: 6)
        let scorer = ReferenceScorer(model: m)
        let greedy = try GreedyDecoder(model: m).decode(sources, maxLength: 6)
        let sampled = try SamplingDecoder(model: m, temperature: 3, topK: 2, seed: 1).decode(sources, maxLength: 6)
        XCTAssertNotEqual(sampled, greedy)
        for (s, source) in sources.enumerated() {
            var prefix: [Int32] = []
            for token in sampled[s] + (sampled[s].count < 6 ? [SpecialTokens.eos] : []) {
                let logp = try scorer.nextLogProbabilities(source: source, prefix: prefix)
                let better = logp.filter { $0 > logp[Int(token)] }.count
                XCTAssertLessThan(better, 2, "source \(s) prefix \(prefix) token \(token)")
                prefix.append(token)
            }
        }
    }

    func testInvalidSettingsAreTypedErrors() {
        let m = decodingTestModel(vocab: 10, seed: 1)
        XCTAssertThrowsError(try SamplingDecoder(model: m, temperature: 0, seed: 1)) { e in
            XCTAssertEqual(e as? DecodingError, .invalidTemperature(0))
            XCTAssertEqual("\(e)", "temperature 0.0 must be a finite number > 0")
        }
        XCTAssertThrowsError(try SamplingDecoder(model: m, temperature: -1, seed: 1))
        XCTAssertThrowsError(try SamplingDecoder(model: m, temperature: .nan, seed: 1))
        XCTAssertThrowsError(try SamplingDecoder(model: m, topK: -1, seed: 1)) { e in
            XCTAssertEqual("\(e)", "top-k -1 must be >= 0 (0 = no top-k restriction)")
        }
        for p: Float in [0, -0.5, 1.5, .nan] {
            XCTAssertThrowsError(try SamplingDecoder(model: m, topP: p, seed: 1)) { e in
                XCTAssertEqual("\(e)", "top-p \(p) must be in (0, 1] (1 = no nucleus restriction)")
            }
        }
        XCTAssertNoThrow(try SamplingDecoder(model: m, topP: 1, seed: 1))
    }
}
