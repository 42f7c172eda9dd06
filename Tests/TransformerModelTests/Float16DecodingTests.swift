import TensorCore
import TransformerModel
import XCTest

/// Decoding with Float16 parameters: products of at most `BLAS.fewRows` rows read the Float16
/// copy in place (`ckernels_gemm_nt_half`) instead of converting each matrix into the staging
/// window, and give exactly the rounded Float32 model's logits, tokens and beam scores.
extension Float16ParametersTests {
    func sources(batch: Int, length: Int, vocab: Int) -> [[Int32]] {
        (0..<batch).map { s in (0..<length).map { i in Int32(4 + (s * 7 + i * 3) % (vocab - 4)) } }
    }

    /// Vocabulary 100: wider than the staging window, so training would chunk the output
    /// projection; decoding reads it whole from the Float16 copy.
    func testDecodingReadsTheFloat16CopyInPlaceWithTheRoundedModelsBits() throws {
        let c = config(vocab: 100)
        let reference = roundedReference(c, seed: 21)
        let half = Transformer(config: c, seed: 21, float16Parameters: true)
        let batch = sources(batch: 2, length: 6, vocab: 100)

        let before = half.arena.stagingConversions
        let greedy = try GreedyDecoder(model: half).decode(batch, maxLength: 9)
        XCTAssertEqual(half.arena.stagingConversions, before, "a 12-row decode staged a matrix")
        XCTAssertEqual(greedy, try GreedyDecoder(model: reference).decode(batch, maxLength: 9))

        let beam = try BeamSearchDecoder(model: half, beamWidth: 3).search(batch, maxLength: 9)
        let expected = try BeamSearchDecoder(model: reference, beamWidth: 3).search(batch, maxLength: 9)
        XCTAssertEqual(beam.map(\.tokens), expected.map(\.tokens))
        XCTAssertEqual(beam.map(\.logProbability.bitPattern), expected.map(\.logProbability.bitPattern))
        XCTAssertEqual(half.arena.stagingConversions, before, "beam search staged a matrix")

        // Step by step, every logit bit for bit.
        let steps = [IncrementalDecoder(model: half), IncrementalDecoder(model: reference)]
        for d in steps { try d.start(source: batch.flatMap { $0 }, batchSize: 2, sourceLength: 6, maxSteps: 5) }
        var tokens: [Int32] = [1, 1]
        for position in 0..<5 {
            let logits = try steps.map { d in
                Array(UnsafeBufferPointer(start: try d.step(tokens), count: 2 * c.vocabSize))
            }
            XCTAssertEqual(logits[0].map(\.bitPattern), logits[1].map(\.bitPattern), "step \(position)")
            tokens = [Int32(5 + position), Int32(40 + position)]
        }
        // Not vacuous: the unrounded Float32 model's logits differ.
        let plain = IncrementalDecoder(model: Transformer(config: c, seed: 21))
        try plain.start(source: batch.flatMap { $0 }, batchSize: 2, sourceLength: 6, maxSteps: 1)
        let plainLogits = Array(UnsafeBufferPointer(start: try plain.step([1, 1]), count: 2 * c.vocabSize))
        try steps[0].start(source: batch.flatMap { $0 }, batchSize: 2, sourceLength: 6, maxSteps: 1)
        let halfLogits = Array(UnsafeBufferPointer(start: try steps[0].step([1, 1]), count: 2 * c.vocabSize))
        XCTAssertNotEqual(plainLogits, halfLogits)
    }

    /// An encoder batch of more than `BLAS.fewRows` rows (4 x 16 = 64) goes through the staging
    /// window and sgemm, the decoder's 4-row steps through the Float16 copy: still the rounded
    /// model's tokens.
    func testLargeEncoderBatchStagesAndStillMatches() throws {
        let c = config(vocab: 100)
        let reference = roundedReference(c, seed: 22)
        let half = Transformer(config: c, seed: 22, float16Parameters: true)
        let batch = sources(batch: 4, length: 16, vocab: 100)
        let before = half.arena.stagingConversions
        let greedy = try GreedyDecoder(model: half).decode(batch, maxLength: 8)
        XCTAssertGreaterThan(half.arena.stagingConversions, before)
        XCTAssertEqual(greedy, try GreedyDecoder(model: reference).decode(batch, maxLength: 8))
    }
}
