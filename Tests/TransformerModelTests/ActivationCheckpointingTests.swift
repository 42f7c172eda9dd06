import TensorCore
import TransformerModel
import XCTest

/// Activation checkpointing (`Transformer.activationCheckpointing`): the same logits and bit for bit
/// the same gradients as the plain path, with dropout active, padding, both norm placements and
/// micro-batches of different shapes; and the activation memory it saves.
final class ActivationCheckpointingTests: XCTestCase {
    /// A padded micro-batch (PAD = 0) with its loss projection R (d(loss)/d(logits) = R).
    struct MicroBatch {
        var batch: Int, sourceLength: Int, targetLength: Int
        var source: [Int32], target: [Int32]
        var dropout: DropoutContext
    }

    /// Source and target lengths differ within and across the two micro-batches, so the shared
    /// stash serves both stacks at several sizes (grown, then reused smaller).
    static let microBatches = [
        // Source lengths 6, 4, 2; target lengths 5, 3, 1.
        MicroBatch(
            batch: 3, sourceLength: 6, targetLength: 5,
            source: [4, 5, 6, 7, 8, 9, 10, 11, 12, 4, 0, 0, 5, 6, 0, 0, 0, 0],
            target: [1, 9, 8, 7, 6, 1, 12, 11, 0, 0, 1, 0, 0, 0, 0],
            dropout: DropoutContext(seed: 21, step: 3, microBatch: 0, rate: 0.1)),
        // Source lengths 4, 3; target lengths 7, 6.
        MicroBatch(
            batch: 2, sourceLength: 4, targetLength: 7,
            source: [7, 7, 8, 9, 10, 4, 6, 0],
            target: [1, 4, 5, 6, 7, 8, 9, 1, 12, 12, 11, 10, 9, 0],
            dropout: DropoutContext(seed: 21, step: 3, microBatch: 1, rate: 0.1)),
    ]

    func config(_ norm: NormPlacement) -> ModelConfig {
        ModelConfig(
            vocabSize: 13, dModel: 16, heads: 4, dFF: 24, encoderLayers: 3, decoderLayers: 3,
            dropout: 0.1, maxLen: 16, norm: norm, tieEmbeddings: true, positional: .sinusoidal)
    }

    struct StepResult {
        var logits: [[UInt32]] = []
        var losses: [Double] = []
        var gradients: [UInt32] = []
    }

    /// Forward and backward of every micro-batch, accumulating gradients: the logits' bits of each
    /// micro-batch, its loss sum(logits * R), and the bits of the whole gradient arena at the end.
    func step(_ model: Transformer, _ batches: [MicroBatch] = microBatches) throws -> StepResult {
        var result = StepResult()
        model.arena.zeroGradients()
        for (k, b) in batches.enumerated() {
            let count = b.batch * b.targetLength * model.config.vocabSize
            let r = ProjectionLoss(count: count, seed: 40 + UInt64(k)).r
            let logits = try model.forward(
                source: b.source, targetInput: b.target, batchSize: b.batch,
                sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: b.dropout)
            let values = Array(UnsafeBufferPointer(start: logits, count: count))
            result.logits.append(values.map(\.bitPattern))
            result.losses.append(zip(values, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
            for i in 0..<count { logits[i] = r[i] }
            model.backward()
        }
        result.gradients = model.arena.gradients.array.map(\.bitPattern)
        return result
    }

    func assertSame(
        _ a: StepResult, _ b: StepResult, _ label: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(a.logits, b.logits, "\(label): logits differ", file: file, line: line)
        XCTAssertEqual(a.losses, b.losses, "\(label): losses differ", file: file, line: line)
        let differing = zip(a.gradients, b.gradients).filter { $0 != $1 }.count
        XCTAssertEqual(a.gradients.count, b.gradients.count, file: file, line: line)
        XCTAssertEqual(
            differing, 0, "\(label): \(differing) gradient elements differ in their bits", file: file, line: line)
    }

    func checkBitwiseIdentical(_ norm: NormPlacement) throws {
        let plain = Transformer(config: config(norm), seed: 5)
        let checkpointed = Transformer(config: config(norm), seed: 5)
        XCTAssertFalse(plain.activationCheckpointing, "off by default")
        checkpointed.activationCheckpointing = true
        let expected = try step(plain)
        assertSame(expected, try step(checkpointed), "\(norm)")
        // A second step on the same replicas (buffers reused, not fresh) is identical too.
        assertSame(try step(plain), try step(checkpointed), "\(norm), second step")

        // Not vacuous: every parameter tensor receives gradient, and the dropout masks matter, so a
        // recomputation with other masks (or from another layer's stash) could not match bit for bit.
        let gradients = plain.arena.gradients.array
        for e in plain.arena.layout.entries {
            XCTAssertTrue(
                gradients[e.offset..<(e.offset + e.count)].contains { $0 != 0 }, "\(norm) \(e.name) has no gradient")
        }
        var otherMasks = Self.microBatches
        for k in otherMasks.indices { otherMasks[k].dropout.step += 1 }
        XCTAssertNotEqual(try step(plain, otherMasks).gradients, expected.gradients, "\(norm): dropout had no effect")
    }

    func testGradientsAreBitwiseIdenticalPreNorm() throws { try checkBitwiseIdentical(.pre) }
    func testGradientsAreBitwiseIdenticalPostNorm() throws { try checkBitwiseIdentical(.post) }

    /// Evaluation (dropout off) through the shared stash gives the plain logits too, and `encode`
    /// between steps does not disturb the next checkpointed step.
    func testEvaluationAndEncodeBetweenSteps() throws {
        let plain = Transformer(config: config(.pre), seed: 8)
        let checkpointed = Transformer(config: config(.pre), seed: 8)
        checkpointed.activationCheckpointing = true
        var eval = Self.microBatches
        for k in eval.indices { eval[k].dropout = .disabled }
        assertSame(try step(plain, eval), try step(checkpointed, eval), "evaluation")
        let b = Self.microBatches[0]
        let memoryCount = b.batch * b.sourceLength * 16
        let plainMemory = try plain.encode(source: b.source, batchSize: b.batch, sourceLength: b.sourceLength)
        let plainBits = UnsafeBufferPointer(start: plainMemory.memory, count: memoryCount).map(\.bitPattern)
        let memory = try checkpointed.encode(source: b.source, batchSize: b.batch, sourceLength: b.sourceLength)
        XCTAssertEqual(UnsafeBufferPointer(start: memory.memory, count: memoryCount).map(\.bitPattern), plainBits)
        assertSame(try step(plain), try step(checkpointed), "after encode")
    }

    /// Switching checkpointing off gives every layer its own stash back: the plain path, its
    /// results and its memory are those of a model that never had checkpointing on.
    func testSwitchingOffRestoresThePlainPath() throws {
        let plain = Transformer(config: config(.post), seed: 9)
        let toggled = Transformer(config: config(.post), seed: 9)
        toggled.activationCheckpointing = true
        _ = try step(toggled)
        toggled.activationCheckpointing = false
        XCTAssertFalse(toggled.activationCheckpointing)
        assertSame(try step(plain), try step(toggled), "switched off")
        XCTAssertEqual(toggled.activationBytes, plain.activationBytes)
    }

    /// In steady state neither mode grows a buffer: a second identical step allocates nothing new.
    func testSteadyStateAllocatesNothing() throws {
        for on in [false, true] {
            let model = Transformer(config: config(.pre), seed: 10)
            model.activationCheckpointing = on
            _ = try step(model)
            let activations = model.activationBytes, workspace = model.workspaceBytes
            _ = try step(model)
            XCTAssertEqual(model.activationBytes, activations, "checkpointing \(on)")
            XCTAssertEqual(model.workspaceBytes, workspace, "checkpointing \(on)")
        }
    }

    /// `base`-like depth and layout at a small width (D 64, H 4, F 256, 6+6 layers, 16 x 64 tokens
    /// each side, dropout active), after one forward and backward. Expected sizes are counted by
    /// hand from what each sublayer stashes; the checkpointed plan keeps one layer's stash (the
    /// decoder's, the larger) plus each layer's [N, D] output instead of all twelve stashes.
    func testActivationMemoryShrinks() throws {
        let b = 16, s = 64, d = 64, h = 4, f = 256, v = 100, layers = 6
        let c = ModelConfig(
            vocabSize: v, dModel: d, heads: h, dFF: f, encoderLayers: layers, decoderLayers: layers,
            dropout: 0.1, maxLen: s, norm: .pre, tieEmbeddings: true, positional: .sinusoidal)
        var rng = RandomStream(seed: 3, stream: 1)
        let source = (0..<(b * s)).map { _ in Int32(rng.int(in: 4..<v)) }
        let target = (0..<(b * s)).map { _ in Int32(rng.int(in: 4..<v)) }
        let dropout = DropoutContext(seed: 1, step: 1, microBatch: 0, rate: 0.1)

        // Floats per stash, n = B*S rows (source and target lengths are equal here).
        let n = b * s, p = b * h * s * s  // p: attention probabilities [B, H, S, S]
        let selfAttention = 3 * n * d + 2 * p + 2 * n * d + 1  // projections, probs + dropped, context, output; no K/V
        // Cross attention: queries, memory K/V, probs + dropped, context, output.
        let crossAttention = n * d + 2 * n * d + 2 * p + 2 * n * d
        let feedForward = n * f + n * d
        let block = 2 * n * d + 2 * n  // residual sum, LayerNorm output, mean, rstd
        let encoderLayer = selfAttention + 6 + feedForward + 2 * block + 4  // unused groups keep 1 float per buffer
        let decoderLayer = selfAttention + crossAttention + feedForward + 3 * block
        let common = 2 * n * d + n * v + 2 * (n * d + 2 * n)  // embeddings, logits, final LayerNorms
        let plainBytes = 4 * (layers * (encoderLayer + decoderLayer) + common)
        let checkpointedBytes = 4 * (decoderLayer + 2 * layers * n * d + common)

        var measured: [Bool: (activations: Int, workspace: Int)] = [:]
        for on in [false, true] {
            let model = Transformer(config: c, seed: 1)
            model.activationCheckpointing = on
            try model.forward(
                source: source, targetInput: target, batchSize: b, sourceLength: s, targetLength: s,
                dropout: dropout)
            model.backward()
            measured[on] = (model.activationBytes, model.workspaceBytes)
        }
        let plain = try XCTUnwrap(measured[false]), checkpointed = try XCTUnwrap(measured[true])
        XCTAssertEqual(plain.activations, plainBytes)
        XCTAssertEqual(checkpointed.activations, checkpointedBytes)
        XCTAssertEqual(checkpointed.workspace, plain.workspace, "backward scratch is the same in both modes")
        let reduction = 1 - Double(checkpointed.activations) / Double(plain.activations)
        XCTAssertGreaterThan(reduction, 0.8)
        print(
            "activation bytes D\(d) F\(f) \(layers)+\(layers) layers, \(b)x\(s) tokens: plain \(plain.activations), "
                + "checkpointed \(checkpointed.activations) (\(Int((reduction * 100).rounded()))% less); "
                + "backward workspace \(plain.workspace) in both")
    }
}
