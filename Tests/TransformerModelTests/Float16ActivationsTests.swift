import TensorCore
import TransformerModel
import XCTest

/// Float16 activations (`Transformer.float16Activations`): the forward is the Float32 forward bit
/// for bit (only what backward reads is stored in Float16), the gradients differ from the Float32
/// path by Float16 rounding only, switching the option off restores the plain path bit for bit, and
/// the stash takes the memory counted by hand.
final class Float16ActivationsTests: XCTestCase {
    typealias MicroBatch = ActivationCheckpointingTests.MicroBatch

    func config(_ norm: NormPlacement, layers: Int = 3) -> ModelConfig {
        ModelConfig(
            vocabSize: 13, dModel: 16, heads: 4, dFF: 24, encoderLayers: layers, decoderLayers: layers,
            dropout: 0.1, maxLen: 16, norm: norm, tieEmbeddings: true, positional: .sinusoidal)
    }

    /// Forward and backward of every micro-batch (loss sum(logits * R)), accumulating gradients:
    /// the logits' bits of each micro-batch and the whole gradient arena at the end.
    func step(_ model: Transformer, _ batches: [MicroBatch] = ActivationCheckpointingTests.microBatches) throws
        -> (logits: [[UInt32]], gradients: [Float])
    {
        var logitBits: [[UInt32]] = []
        model.arena.zeroGradients()
        for (k, b) in batches.enumerated() {
            let count = b.batch * b.targetLength * model.config.vocabSize
            let r = ProjectionLoss(count: count, seed: 40 + UInt64(k)).r
            let logits = try model.forward(
                source: b.source, targetInput: b.target, batchSize: b.batch,
                sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: b.dropout)
            logitBits.append(UnsafeBufferPointer(start: logits, count: count).map(\.bitPattern))
            for i in 0..<count { logits[i] = r[i] }
            model.backward()
        }
        return (logitBits, model.arena.gradients.array)
    }

    static func norm(_ v: ArraySlice<Float>) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    static func relativeError(_ a: ArraySlice<Float>, _ reference: ArraySlice<Float>) -> Double {
        let diff = zip(a, reference).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        return diff / norm(reference)
    }

    func checkCloseToFloat32(_ norm: NormPlacement) throws {
        let plain = Transformer(config: config(norm), seed: 5)
        let half = Transformer(config: config(norm), seed: 5)
        XCTAssertFalse(half.float16Activations, "off by default")
        half.float16Activations = true
        XCTAssertTrue(half.float16Activations)
        for round in 0..<2 {  // the second step reuses the buffers of the first
            let expected = try step(plain), actual = try step(half)
            XCTAssertEqual(actual.logits, expected.logits, "\(norm) step \(round): forward must be the Float32 forward")
            let all = expected.gradients[...], got = actual.gradients[...]
            let global = Self.relativeError(got, all)
            XCTAssertLessThan(global, 1e-2, "\(norm) step \(round): gradient relative error \(global)")
            // Not vacuous: the stored values really were rounded (some gradient bits differ).
            XCTAssertGreaterThan(global, 0, "\(norm) step \(round): no rounding reached the gradients")
            var worst = 0.0
            for e in plain.arena.layout.entries {
                let range = e.offset..<(e.offset + e.count)
                XCTAssertGreaterThan(Self.norm(all[range]), 0, "\(e.name) has no gradient")
                let error = Self.relativeError(got[range], all[range])
                XCTAssertLessThan(error, 1e-2, "\(norm) step \(round): \(e.name) relative error \(error)")
                worst = max(worst, error)
            }
            print("float16 activations \(norm) step \(round): gradient relative error \(global), worst tensor \(worst)")
        }
    }

    func testGradientsCloseToFloat32PreNorm() throws { try checkCloseToFloat32(.pre) }
    func testGradientsCloseToFloat32PostNorm() throws { try checkCloseToFloat32(.post) }

    /// One layer per stack: no carry, layer 0 reads the embedding and is the live decoder layer.
    func testSingleLayerStacks() throws {
        let plain = Transformer(config: config(.pre, layers: 1), seed: 6)
        let half = Transformer(config: config(.pre, layers: 1), seed: 6)
        half.float16Activations = true
        let expected = try step(plain), actual = try step(half)
        XCTAssertEqual(actual.logits, expected.logits)
        XCTAssertLessThan(Self.relativeError(actual.gradients[...], expected.gradients[...]), 1e-2)
    }

    /// Off again: every layer gets its own Float32 stash back, results bit for bit the plain ones.
    /// With checkpointing also on, checkpointing's plan is used: bitwise the plain gradients.
    func testSwitchingOffAndCheckpointingGiveThePlainPath() throws {
        let plain = Transformer(config: config(.post), seed: 9)
        let toggled = Transformer(config: config(.post), seed: 9)
        toggled.float16Activations = true
        _ = try step(toggled)
        toggled.float16Activations = false
        let expected = try step(plain)
        let got = try step(toggled)
        XCTAssertEqual(got.logits, expected.logits)
        XCTAssertEqual(got.gradients.map(\.bitPattern), expected.gradients.map(\.bitPattern))
        XCTAssertEqual(toggled.activationBytes, plain.activationBytes)

        let both = Transformer(config: config(.post), seed: 9)
        both.float16Activations = true
        both.activationCheckpointing = true
        XCTAssertEqual(try step(both).gradients.map(\.bitPattern), expected.gradients.map(\.bitPattern))
        both.activationCheckpointing = false  // Float16 plan again: close, not equal
        let alone = try step(both)
        XCTAssertEqual(alone.logits, expected.logits)
        XCTAssertLessThan(Self.relativeError(alone.gradients[...], expected.gradients[...]), 1e-2)
    }

    /// `encode` (evaluation) between steps does not disturb the next step.
    func testEncodeBetweenSteps() throws {
        let reference = Transformer(config: config(.pre), seed: 8)
        let model = Transformer(config: config(.pre), seed: 8)
        reference.float16Activations = true
        model.float16Activations = true
        _ = try step(reference)
        _ = try step(model)
        let b = ActivationCheckpointingTests.microBatches[1]
        _ = try model.encode(source: b.source, batchSize: b.batch, sourceLength: b.sourceLength)
        XCTAssertEqual(try step(model).gradients.map(\.bitPattern), try step(reference).gradients.map(\.bitPattern))
    }

    /// `base`-like depth and layout at a small width (D 64, H 4, F 256, 6+6 layers, 8 x 32 tokens
    /// each side, dropout active). Expected sizes counted by hand: per layer, the Float16 copies of
    /// what its backward reads (no sublayer outputs, no dropped-out probabilities, not the layer's
    /// own output), its input (layers after the first) and Float32 LayerNorm statistics; plus one
    /// Float32 decoder-layer stash and two [N, D] carries. The last decoder layer stays live.
    func testActivationMemory() throws {
        let b = 8, s = 32, d = 64, h = 4, f = 256, v = 100, layers = 6
        let c = ModelConfig(
            vocabSize: v, dModel: d, heads: h, dFF: f, encoderLayers: layers, decoderLayers: layers,
            dropout: 0.1, maxLen: s, norm: .pre, tieEmbeddings: true, positional: .sinusoidal)
        var rng = RandomStream(seed: 3, stream: 1)
        let source = (0..<(b * s)).map { _ in Int32(rng.int(in: 4..<v)) }
        let target = (0..<(b * s)).map { _ in Int32(rng.int(in: 4..<v)) }
        let dropout = DropoutContext(seed: 1, step: 1, microBatch: 0, rate: 0.1)

        let n = b * s, p = b * h * s * s
        let selfAttention = 3 * n * d + 2 * p + 2 * n * d + 1
        let crossAttention = n * d + 2 * n * d + 2 * p + 2 * n * d
        let decoderStash = selfAttention + crossAttention + (n * f + n * d) + 3 * (2 * n * d + 2 * n)
        let common = 2 * n * d + n * v + 2 * (n * d + 2 * n)
        // Halves: encoder layer: projections 3nd, probs p, context nd, hidden nf, block sums and
        // norm outputs 3nd (the second sum is the output); decoder layer adds cross-attention
        // (queries nd, K/V 2nd, probs p, context nd) and a third block (2nd), again minus its output.
        let encoderHalves = 7 * n * d + p + n * f, decoderHalves = 13 * n * d + 2 * p + n * f
        let inputs = (layers - 1) * n * d + 1  // layer 0's input buffer keeps its 1-element allocation
        let halfBytes = 2 * (layers * encoderHalves + inputs + (layers - 1) * decoderHalves + inputs)
        let statisticsBytes = 4 * (layers * 4 * n + (layers - 1) * 6 * n)
        let expected = 4 * (decoderStash + 2 * n * d + common) + halfBytes + statisticsBytes

        var measured: [Bool: Int] = [:]
        for on in [false, true] {
            let model = Transformer(config: c, seed: 1)
            model.float16Activations = on
            for _ in 0..<2 {  // steady state: the second step allocates nothing more
                try model.forward(
                    source: source, targetInput: target, batchSize: b, sourceLength: s, targetLength: s,
                    dropout: dropout)
                model.backward()
                if let first = measured[on] { XCTAssertEqual(model.activationBytes, first) }
                measured[on] = model.activationBytes
            }
        }
        let plain = try XCTUnwrap(measured[false]), half = try XCTUnwrap(measured[true])
        XCTAssertEqual(half, expected)
        let reduction = 1 - Double(half) / Double(plain)
        XCTAssertGreaterThan(reduction, 0.45)
        print(
            "activation bytes D\(d) F\(f) \(layers)+\(layers) layers, \(b)x\(s) tokens: plain \(plain), "
                + "float16 \(half) (\(Int((reduction * 100).rounded()))% less)")
    }
}
