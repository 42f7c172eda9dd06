import TensorCore
import TransformerModel
import XCTest

/// `BeamSearchDecoder.nBest`: ranked, exact scores, its first equal to `search`, exact top-N when
/// the beam holds every prefix.
final class NBestTests: XCTestCase {
    private let sources: [[Int32]] = [[4, 5, 6], [7], [5, 5, 4, 7, 6], [6, 4], [], [7, 6, 5, 4]]

    func testFirstHypothesisIsTheBeamSearchResult() throws {
        for seed in UInt64(1)...4 {
            let m = decodingTestModel(vocab: 11, seed: seed, norm: seed % 2 == 0 ? .post : .pre)
            for (k, alpha) in [(1, 0.6), (2, 0.0), (4, 0.6), (5, 2.0)] {
                let beam = try BeamSearchDecoder(model: m, beamWidth: k, lengthPenalty: alpha)
                let single = try beam.search(sources, maxLength: 8)
                for n in 1...k {
                    let lists = try beam.nBest(sources, maxLength: 8, count: n)
                    XCTAssertEqual(lists.count, sources.count)
                    for (s, list) in lists.enumerated() {
                        XCTAssertEqual(list.first, single[s], "seed \(seed) K \(k) N \(n) source \(s)")
                    }
                }
            }
        }
    }

    func testListsAreRankedDistinctAndScoredExactly() throws {
        let m = decodingTestModel(vocab: 12, seed: 5)
        let scorer = ReferenceScorer(model: m)
        let alpha = 0.6
        let lists = try BeamSearchDecoder(model: m, beamWidth: 5, lengthPenalty: alpha).nBest(
            sources, maxLength: 7, count: 4)
        for (s, list) in lists.enumerated() {
            XCTAssertEqual(list.count, 4, "source \(s)")
            XCTAssertEqual(list.map(\.score), list.map(\.score).sorted(by: >), "source \(s)")
            XCTAssertEqual(
                Set(list.map { "\($0.tokens) \($0.endsWithEOS)" }).count, list.count, "distinct, source \(s)")
            for h in list {
                let reference = try scorer.logProbability(
                    source: sources[s], tokens: h.tokens, endsWithEOS: h.endsWithEOS)
                XCTAssertEqual(h.logProbability, reference, accuracy: 1e-4)
                XCTAssertEqual(
                    h.score, h.logProbability / BeamSearchDecoder.lengthPenalty(h.predictions, alpha: alpha),
                    accuracy: 1e-12)
            }
        }
    }

    /// K = 56 keeps every prefix of V = 8 up to 3 tokens (see BeamSearchTests), so the N best are
    /// the N best of all outputs, found by enumeration.
    func testMatchesExhaustiveTopNWhenTheBeamHoldsEveryPrefix() throws {
        let m = decodingTestModel(vocab: 8, seed: 2, eosScale: 8)
        let scorer = ReferenceScorer(model: m)
        for alpha in [0.0, 1.0] {
            let lists = try BeamSearchDecoder(model: m, beamWidth: 56, lengthPenalty: alpha).nBest(
                sources, maxLength: 3, count: 5)
            for (s, source) in sources.enumerated() {
                var all: [BeamHypothesis] = []
                func expand(_ prefix: [Int32], _ logProb: Double) throws {
                    let next = try scorer.nextLogProbabilities(source: source, prefix: prefix)
                    let lp = BeamSearchDecoder.lengthPenalty(prefix.count + 1, alpha: alpha)
                    for (j, l) in next.enumerated() {
                        let total = logProb + l
                        if Int32(j) == SpecialTokens.eos {
                            all.append(
                                BeamHypothesis(
                                    tokens: prefix, endsWithEOS: true, logProbability: total, score: total / lp))
                        } else if prefix.count + 1 == 3 {
                            all.append(
                                BeamHypothesis(
                                    tokens: prefix + [Int32(j)], endsWithEOS: false, logProbability: total,
                                    score: total / lp))
                        } else {
                            try expand(prefix + [Int32(j)], total)
                        }
                    }
                }
                try expand([], 0)
                let top = all.sorted { $0.score > $1.score }.prefix(5)
                XCTAssertEqual(lists[s].map(\.tokens), top.map(\.tokens), "source \(s) alpha \(alpha)")
                XCTAssertEqual(lists[s].map(\.endsWithEOS), top.map(\.endsWithEOS))
                for (a, b) in zip(lists[s], top) { XCTAssertEqual(a.score, b.score, accuracy: 1e-4) }
            }
        }
    }

    func testCountOutsideOneToBeamWidthIsATypedError() throws {
        let beam = try BeamSearchDecoder(model: decodingTestModel(vocab: 8, seed: 1), beamWidth: 3)
        for n in [0, 4] {
            XCTAssertThrowsError(try beam.nBest([[4]], maxLength: 4, count: n)) { error in
                XCTAssertEqual(error as? DecodingError, .invalidNBest(n, beamWidth: 3))
            }
        }
        XCTAssertEqual(
            DecodingError.invalidNBest(4, beamWidth: 3).description,
            "n-best 4 must be between 1 and the beam width 3 (a beam search keeps at most its width of hypotheses)")
    }
}
