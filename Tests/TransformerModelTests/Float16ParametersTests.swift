import TensorCore
import TransformerModel
import XCTest

/// Float16 parameters (`Transformer(config:seed:float16Parameters: true)`): forward and backward
/// equal those of a Float32 model whose matrices were rounded to Float16, the parameter memory
/// about halves, and the load/read API round-trips.
final class Float16ParametersTests: XCTestCase {
    typealias MicroBatch = ActivationCheckpointingTests.MicroBatch

    func config(
        vocab: Int, norm: NormPlacement = .pre, tied: Bool = true,
        positional: PositionalKind = .sinusoidal
    ) -> ModelConfig {
        ModelConfig(
            vocabSize: vocab, dModel: 16, heads: 4, dFF: 24, encoderLayers: 2, decoderLayers: 2,
            dropout: 0.1, maxLen: 16, norm: norm, tieEmbeddings: tied, positional: positional)
    }

    static func rounded(_ values: [Float]) -> [Float] {
        var halves = [UInt16](repeating: 0, count: values.count), out = values
        Half.encode(values, &halves, count: values.count)
        Half.decode(halves, &out, count: values.count)
        return out
    }

    /// A Float32 model with the same initialisation, its matrices rounded to Float16.
    func roundedReference(_ c: ModelConfig, seed: UInt64) -> Transformer {
        let model = Transformer(config: c, seed: seed)
        for e in model.arena.layout.entries where e.shape.count >= 2 {
            model.arena.setValue(e.name, Self.rounded(model.arena.value(e.name)))
        }
        return model
    }

    func step(_ model: Transformer) throws -> (logits: [Float], gradients: [Float]) {
        var allLogits: [Float] = []
        model.arena.zeroGradients()
        for (k, b) in ActivationCheckpointingTests.microBatches.enumerated() {
            let count = b.batch * b.targetLength * model.config.vocabSize
            let r = ProjectionLoss(count: count, seed: 40 + UInt64(k)).r
            let logits = try model.forward(
                source: b.source.map { $0 % Int32(model.config.vocabSize) },
                targetInput: b.target.map { $0 % Int32(model.config.vocabSize) },
                batchSize: b.batch, sourceLength: b.sourceLength,
                targetLength: b.targetLength, dropout: b.dropout)
            allLogits += Array(UnsafeBufferPointer(start: logits, count: count))
            for i in 0..<count { logits[i] = r[i] }
            model.backward()
        }
        return (allLogits, model.arena.gradients.array)
    }

    /// Vocabulary 13: the output projection fits the staging window in one chunk, so every
    /// operation is the Float32 model's in the same order: bitwise equal, for each variant.
    func testBitwiseEqualToRoundedFloat32Model() throws {
        for (norm, tied, positional) in [
            (NormPlacement.pre, true, PositionalKind.sinusoidal), (.post, true, .sinusoidal),
            (.pre, false, .learned),
        ] {
            let c = config(vocab: 13, norm: norm, tied: tied, positional: positional)
            let reference = roundedReference(c, seed: 5)
            let half = Transformer(config: c, seed: 5, float16Parameters: true)
            XCTAssertTrue(half.float16Parameters)
            XCTAssertFalse(reference.float16Parameters)
            for round in 0..<2 {
                let expected = try step(reference), actual = try step(half)
                let label = "\(norm) tied \(tied) \(positional) step \(round)"
                XCTAssertEqual(actual.logits.map(\.bitPattern), expected.logits.map(\.bitPattern), label)
                XCTAssertEqual(actual.gradients.map(\.bitPattern), expected.gradients.map(\.bitPattern), label)
            }
            // Not vacuous: rounding changed the model (the unrounded Float32 model differs).
            let unrounded = Transformer(config: c, seed: 5)
            XCTAssertNotEqual(try step(unrounded).logits, try step(reference).logits)
        }
    }

    /// Vocabulary 100 (100 x 16 floats > the 768-float window, so 48-row chunks): the logits are
    /// computed per chunk of vocabulary columns and d(decoder output) sums the chunks' products
    /// in order, a different summation order from one GEMM: equal within 1e-6 relative.
    func testChunkedOutputProjectionCloseToRoundedFloat32Model() throws {
        let c = config(vocab: 100)
        let reference = roundedReference(c, seed: 7)
        let half = Transformer(config: c, seed: 7, float16Parameters: true)
        let expected = try step(reference), actual = try step(half)
        func relative(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
            let diff = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            return diff / max(1e-30, b.map { Double($0) * Double($0) }.reduce(0, +).squareRoot())
        }
        XCTAssertLessThan(relative(actual.logits[...], expected.logits[...]), 1e-6)
        for e in half.arena.layout.entries {
            let range = e.offset..<(e.offset + e.count)
            XCTAssertLessThan(relative(actual.gradients[range], expected.gradients[range]), 1e-6, e.name)
        }
    }

    /// `base` (48,236,544 floats laid out: embedding 4,096,000 + 6 x 3,152,384 encoder + 6 x
    /// 4,204,032 decoder + 2,048 final norms): Float32 values take 192,946,176 bytes; Float16 takes
    /// the Float16 copy (96,473,088) + the staging window of the largest layer matrix (linear1,
    /// 2048 x 512 floats: 4,194,304) + the vectors in Float32 (100,352 floats: 401,408) =
    /// 101,068,800 bytes, 52.4% of Float32.
    func testBaseParameterBytesHalve() {
        let base = ModelConfig(
            vocabSize: 8000, dModel: 512, heads: 8, dFF: 2048, encoderLayers: 6, decoderLayers: 6,
            dropout: 0.1, maxLen: 256)
        let layout = ParameterLayout(config: base)
        XCTAssertEqual(layout.totalCount, 48_236_544)
        let float32 = ParameterArena(layout: layout), float16 = ParameterArena(layout: layout, float16: true)
        XCTAssertEqual(float32.storageBytes, 192_946_176)
        XCTAssertEqual(float16.storageBytes, 101_068_800)
        let ratio = Double(float16.storageBytes) / Double(float32.storageBytes)
        XCTAssertEqual(ratio, 0.5238, accuracy: 0.0001)
    }

    /// Loading Float32 weights rounds matrices to Float16 and keeps vectors exact; loading Float16
    /// bits copies them; reading back returns what was loaded; the model then computes with it.
    func testLoadAndReadParameters() throws {
        let c = config(vocab: 13)
        let source = Transformer(config: c, seed: 11), layout = source.arena.layout
        let weights = source.arena.values.array
        let half = Transformer(config: c, seed: 99, float16Parameters: true)
        weights.withUnsafeBufferPointer { half.loadParameters(from: $0.baseAddress!) }
        var read = [Float](repeating: 1, count: layout.totalCount)
        read.withUnsafeMutableBufferPointer { half.readParameters(into: $0.baseAddress!) }
        for e in layout.entries {
            let original = Array(weights[e.offset..<(e.offset + e.count)])
            let expected = e.shape.count >= 2 ? Self.rounded(original) : original
            XCTAssertEqual(Array(read[e.offset..<(e.offset + e.count)]), expected, e.name)
            XCTAssertEqual(half.arena.value(e.name), expected, e.name)
        }
        // Same weights: the same results as the rounded Float32 model built from them.
        let reference = roundedReference(c, seed: 11)
        XCTAssertEqual(try step(half).gradients.map(\.bitPattern), try step(reference).gradients.map(\.bitPattern))

        // Float16 bits: copied bit for bit into a Float16 replica, converted exactly into Float32.
        var bits = [UInt16](repeating: 0, count: layout.totalCount)
        Half.encode(weights, &bits, count: layout.totalCount)
        let other = Transformer(config: c, seed: 98, float16Parameters: true)
        let plain = Transformer(config: c, seed: 98)
        bits.withUnsafeBufferPointer {
            other.loadParameters(half: $0.baseAddress!)
            plain.loadParameters(half: $0.baseAddress!)
        }
        let w = layout.entries[1]  // encoder.layers.0.self_attn.in_proj_weight
        XCTAssertEqual(w.name, "encoder.layers.0.self_attn.in_proj_weight")
        let expected = Self.rounded(Array(weights[w.offset..<(w.offset + w.count)]))
        XCTAssertEqual(other.arena.value(w.name), expected)
        XCTAssertEqual(plain.arena.value(w.name), expected)
        XCTAssertEqual(try step(other).gradients.map(\.bitPattern), try step(plain).gradients.map(\.bitPattern))
    }
}

extension Float16ParametersTests {
    /// Both storage options together: Float16 activations on the Float16 replica give exactly what
    /// they give on the rounded Float32 model (the options are independent).
    func testWithFloat16Activations() throws {
        let c = config(vocab: 13)
        let reference = roundedReference(c, seed: 12)
        let half = Transformer(config: c, seed: 12, float16Parameters: true)
        reference.float16Activations = true
        half.float16Activations = true
        let expected = try step(reference), actual = try step(half)
        XCTAssertEqual(actual.logits.map(\.bitPattern), expected.logits.map(\.bitPattern))
        XCTAssertEqual(actual.gradients.map(\.bitPattern), expected.gradients.map(\.bitPattern))
    }
}
