import Foundation
import TensorCore
import TransformerModel
import XCTest

/// Greedy vs beam-4 timing on a `small`-sized random model (D256 H4 F1024 3+3, vocabulary 8000),
/// 64 sources of 12-18 tokens, at most 40 output tokens. Random weights never emit EOS, so both
/// decoders run all 40 steps. Three alternating rounds; the minimum of each is reported (the
/// machine is shared, single measurements swing by 2x). Skipped unless TRANSFORMER_DECODE_BENCH=1
/// (about a minute); run it on a release build:
/// `TRANSFORMER_DECODE_BENCH=1 swift test -c release --filter DecodingBenchmark`.
final class DecodingBenchmark: XCTestCase {
    func testGreedyVersusBeamFour() throws {
        guard ProcessInfo.processInfo.environment["TRANSFORMER_DECODE_BENCH"] == "1" else {
            throw XCTSkip("set TRANSFORMER_DECODE_BENCH=1 to run the decoding benchmark")
        }
        let config = ModelConfig(
            vocabSize: 8000, dModel: 256, heads: 4, dFF: 1024, encoderLayers: 3, decoderLayers: 3,
            dropout: 0, maxLen: 64)
        let model = Transformer(config: config, seed: 1)
        var rng = RandomStream(seed: 2, stream: 0)
        let sources: [[Int32]] = (0..<64).map { _ in
            (0..<rng.int(in: 12..<19)).map { _ in Int32(rng.int(in: 4..<8000)) }
        }
        let greedy = GreedyDecoder(model: model), beam = try BeamSearchDecoder(model: model, beamWidth: 4)
        _ = try greedy.decode(Array(sources.prefix(4)), maxLength: 8)  // warm-up (BLAS threads, buffers)
        _ = try beam.decode(Array(sources.prefix(4)), maxLength: 8)
        func seconds(_ body: () throws -> [[Int32]]) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            let out = try body()
            XCTAssertEqual(out.count, 64)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var g = Double.infinity, b = Double.infinity
        for _ in 0..<3 {
            g = min(g, try seconds { try greedy.decode(sources, maxLength: 40) })
            b = min(b, try seconds { try beam.decode(sources, maxLength: 40) })
        }
        print(
            String(
                format: "decode bench (min of 3): greedy %.1f ms/sentence, beam 4 %.1f ms/sentence, ratio %.2f",
                g * 1000 / 64, b * 1000 / 64, b / g))
        XCTAssertLessThan(b / g, 4)
    }
}
