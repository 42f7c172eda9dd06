import TensorCore
import TransformerModel
import XCTest

/// Structural properties of the whole model on a tiny config: masking, batch independence,
/// permutation equivariance, determinism, gradient accumulation and the parameter layout.
final class ModelPropertyTests: XCTestCase {
    static let vocab = 11

    func tiny(positional: PositionalKind = .sinusoidal, dropout: Float = 0) -> ModelConfig {
        ModelConfig(
            vocabSize: Self.vocab, dModel: 8, heads: 2, dFF: 16, encoderLayers: 2, decoderLayers: 2,
            dropout: dropout, maxLen: 16, norm: .pre, tieEmbeddings: true, positional: positional)
    }

    /// Logits [B*St, V] as an array.
    func logits(
        _ model: Transformer, source: [Int32], target: [Int32], batch: Int,
        dropout: DropoutContext = .disabled
    ) throws -> [Float] {
        let sl = source.count / batch, tl = target.count / batch
        let p = try model.forward(
            source: source, targetInput: target, batchSize: batch, sourceLength: sl,
            targetLength: tl, dropout: dropout)
        return Array(UnsafeBufferPointer(start: p, count: target.count * model.config.vocabSize))
    }

    func bits(_ x: ArraySlice<Float>) -> [UInt32] { x.map(\.bitPattern) }

    func maxDifference(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    // (a) No information flows from later target positions to earlier ones.
    func testNoCausalLeak() throws {
        let model = Transformer(config: tiny(), seed: 1)
        let v = Self.vocab
        let source: [Int32] = [4, 5, 6, 7, 8, 9, 10, 4, 5, 0]
        let target: [Int32] = [1, 4, 5, 6, 7, 8, 1, 9, 10, 4, 0, 0]
        let st = 6
        let reference = try logits(model, source: source, target: target, batch: 2)
        for t in 0..<(st - 1) {
            var changed = target
            changed[t + 1] = changed[t + 1] == 10 ? 9 : 10  // sequence 0
            if t + 1 < 4 { changed[st + t + 1] = changed[st + t + 1] == 10 ? 9 : 10 }  // sequence 1 (non-pad part)
            let out = try logits(model, source: source, target: changed, batch: 2)
            for b in 0..<2 {
                let early = (b * st * v)..<((b * st + t + 1) * v)
                XCTAssertEqual(
                    bits(out[early]), bits(reference[early]), "sequence \(b): position <= \(t) saw position \(t + 1)")
            }
            // The changed position itself does change (the test is not vacuous).
            let at = ((t + 1) * v)..<((t + 2) * v)
            XCTAssertGreaterThan(maxDifference(out[at], reference[at]), 1e-4)
        }
    }

    // (b) Padding is invisible, and batch rows do not interact.
    func testPaddedRowEqualsTheSequenceAlone() throws {
        let model = Transformer(config: tiny(), seed: 2)
        let v = Self.vocab
        let b = TestBatch.uneven(vocab: v)  // source lengths 5 and 3, target lengths 4 and 2
        let batched = try logits(model, source: b.source, target: b.targetInput, batch: 2)
        let first = try logits(model, source: Array(b.source[0..<5]), target: Array(b.targetInput[0..<4]), batch: 1)
        let second = try logits(model, source: Array(b.source[5..<8]), target: Array(b.targetInput[4..<6]), batch: 1)
        XCTAssertLessThan(maxDifference(batched[0..<(4 * v)], first[...]), 1e-5)
        // Only the two real target positions of the second sequence are compared.
        XCTAssertLessThan(maxDifference(batched[(4 * v)..<(6 * v)], second[...]), 1e-5)
    }

    func testChangingOneRowLeavesTheOthersUntouched() throws {
        let model = Transformer(config: tiny(), seed: 3)
        let v = Self.vocab
        let source: [Int32] = [4, 5, 6, 0, 7, 8, 9, 10, 6, 6, 0, 0]
        let target: [Int32] = [1, 4, 5, 1, 6, 7, 1, 8, 0]
        let reference = try logits(model, source: source, target: target, batch: 3)
        var changed = source, changedTarget = target
        changed[4] = 10
        changed[7] = 4  // row 1's source
        changedTarget[5] = 9  // row 1's target
        let out = try logits(model, source: changed, target: changedTarget, batch: 3)
        for row in [0, 2] {
            let range = (row * 3 * v)..<((row + 1) * 3 * v)
            XCTAssertEqual(bits(out[range]), bits(reference[range]), "row \(row) changed")
        }
        XCTAssertGreaterThan(maxDifference(out[(3 * v)..<(6 * v)], reference[(3 * v)..<(6 * v)]), 1e-4)
    }

    // (c) Without positions, the encoder is permutation-equivariant and cross-attention
    // permutation-invariant over the memory, so permuting the source leaves the logits unchanged.
    func testSourcePermutationInvarianceWithoutPositions() throws {
        let source: [Int32] = [4, 5, 6, 7, 8, 9]
        let permuted: [Int32] = [9, 6, 4, 8, 5, 7]
        let target: [Int32] = [1, 5, 7, 4]
        let plain = Transformer(config: tiny(positional: .none), seed: 4)
        let a = try logits(plain, source: source, target: target, batch: 1)
        let b = try logits(plain, source: permuted, target: target, batch: 1)
        XCTAssertLessThan(maxDifference(a[...], b[...]), 1e-5)
        // Not vacuous: changing a token (rather than reordering) does change the output.
        let c = try logits(plain, source: [4, 5, 6, 7, 8, 10], target: target, batch: 1)
        XCTAssertGreaterThan(maxDifference(a[...], c[...]), 1e-3)

        let positioned = Transformer(config: tiny(positional: .sinusoidal), seed: 4)
        let d = try logits(positioned, source: source, target: target, batch: 1)
        let e = try logits(positioned, source: permuted, target: target, batch: 1)
        XCTAssertGreaterThan(maxDifference(d[...], e[...]), 1e-3)
    }

    // (d) A row with no visible key gives zeros, never NaN, forward and backward.
    func testFullyMaskedBatchEntryGivesZeros() {
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 3, keyLength: 4, headDim: 2)
        let d = s.modelWidth
        let q = randomValues(s.batch * s.queryLength * d, seed: 1), k = randomValues(s.batch * s.keyLength * d, seed: 2)
        let v = randomValues(s.batch * s.keyLength * d, seed: 3)
        let mask = [true, true, false, true, false, false, false, false]
        for dropout in [DropoutContext.disabled, DropoutContext(seed: 3, step: 1, microBatch: 0, rate: 0.2)] {
            var probs = [Float](repeating: .nan, count: s.probabilityCount)
            var dropped = [Float](repeating: .nan, count: s.probabilityCount)
            var out = [Float](repeating: .nan, count: s.batch * s.queryLength * d)
            var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count)
            var dv = [Float](repeating: .nan, count: v.count)
            var scratch = [Float](repeating: .nan, count: s.probabilityCount)
            let dout = randomValues(out.count, seed: 4)
            probs.withUnsafeMutableBufferPointer { p in
                dropped.withUnsafeMutableBufferPointer { dp in
                    let pd = dropout.isActive ? dp.baseAddress! : p.baseAddress!
                    AttentionKernel.forward(
                        q: q, ldq: d, k: k, ldk: d, v: v, ldv: d, shape: s, keyMask: mask, causal: false,
                        probs: p.baseAddress!, dropped: pd, output: &out, dropout: dropout, site: 1)
                    AttentionKernel.backward(
                        outputGradient: dout, q: q, ldq: d, k: k, ldk: d, v: v, ldv: d,
                        probs: p.baseAddress!, dropped: pd, shape: s, dropout: dropout,
                        dq: &dq, dk: &dk, dv: &dv, scratch: &scratch)
                }
            }
            for buffer in [out, probs, dq, dk, dv] { XCTAssertTrue(buffer.allSatisfy(\.isFinite)) }
            let half = s.queryLength * d, keyHalf = s.keyLength * d
            XCTAssertEqual(Array(out[half...]), [Float](repeating: 0, count: half))
            XCTAssertEqual(
                Array(probs[(s.probabilityCount / 2)...]), [Float](repeating: 0, count: s.probabilityCount / 2))
            XCTAssertEqual(Array(dq[half...]), [Float](repeating: 0, count: half))
            XCTAssertEqual(Array(dk[keyHalf...]), [Float](repeating: 0, count: keyHalf))
            XCTAssertEqual(Array(dv[keyHalf...]), [Float](repeating: 0, count: keyHalf))
            // Batch entry 0 is unaffected.
            XCTAssertGreaterThan(out[0..<half].map { abs($0) }.max() ?? 0, 0)
        }
    }

    func testModelWithAnAllPaddingSourceRowStaysFinite() throws {
        // A source row of only padding: every cross-attention row of that sequence is empty.
        let model = Transformer(config: tiny(), seed: 5)
        let out = try logits(model, source: [4, 5, 6, 0, 0, 0], target: [1, 4, 1, 5], batch: 2)
        XCTAssertTrue(out.allSatisfy(\.isFinite))
        let loss = ProjectionLoss(count: out.count, seed: 6)
        try loss.gradients(
            model,
            TestBatch(
                batch: 2, sourceLength: 3, targetLength: 2, source: [4, 5, 6, 0, 0, 0],
                targetInput: [1, 4, 1, 5]))
        XCTAssertTrue(model.arena.gradients.array.allSatisfy(\.isFinite))
    }

    // (e) Determinism of evaluation and of dropout masks.
    func testDeterminismAndDropoutReproducibility() throws {
        let model = Transformer(config: tiny(dropout: 0.1), seed: 6)
        let b = TestBatch.uneven(vocab: Self.vocab)
        let eval1 = try logits(model, source: b.source, target: b.targetInput, batch: 2)
        let eval2 = try logits(model, source: b.source, target: b.targetInput, batch: 2)
        XCTAssertEqual(bits(eval1[...]), bits(eval2[...]))
        let ctx = DropoutContext(seed: 17, step: 4, microBatch: 0, rate: 0.1)
        let train1 = try logits(model, source: b.source, target: b.targetInput, batch: 2, dropout: ctx)
        let train2 = try logits(model, source: b.source, target: b.targetInput, batch: 2, dropout: ctx)
        XCTAssertEqual(bits(train1[...]), bits(train2[...]))
        XCTAssertGreaterThan(maxDifference(train1[...], eval1[...]), 1e-4, "dropout had no effect")
        var other = ctx
        other.microBatch = 1
        let train3 = try logits(model, source: b.source, target: b.targetInput, batch: 2, dropout: other)
        XCTAssertGreaterThan(maxDifference(train1[...], train3[...]), 1e-4, "different micro-batch, same masks")
        // A rebuilt replica with the same seed reproduces the training forward bit for bit.
        let replica = Transformer(config: tiny(dropout: 0.1), seed: 6)
        let train4 = try logits(replica, source: b.source, target: b.targetInput, batch: 2, dropout: ctx)
        XCTAssertEqual(bits(train1[...]), bits(train4[...]))
    }

    /// Whole-model finite differences with dropout active (a fixed mask), which exercises every
    /// dropout backward path (embeddings, attention weights, FFN hidden, sublayer outputs).
    func testGradientsWithActiveDropout() throws {
        for norm in [NormPlacement.pre, .post] {
            var c = tiny(dropout: 0.2)
            c.norm = norm
            let model = Transformer(config: c, seed: 7)
            let b = TestBatch.uneven(vocab: Self.vocab)
            let ctx = DropoutContext(seed: 99, step: 2, microBatch: 1, rate: 0.2)
            let r = ProjectionLoss(count: b.batch * b.targetLength * Self.vocab, seed: 8).r
            func value() throws -> Double {
                let out = try logits(model, source: b.source, target: b.targetInput, batch: 2, dropout: ctx)
                return zip(out, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            model.arena.zeroGradients()
            let l = try model.forward(
                source: b.source, targetInput: b.targetInput, batchSize: 2, sourceLength: 5,
                targetLength: 4, dropout: ctx)
            for i in 0..<r.count { l[i] = r[i] }
            model.backward()
            let analytic = model.arena.gradients.array
            for e in model.arena.layout.entries {
                for k in 0..<Swift.min(e.count, 4) {
                    let idx = e.offset + (k * 7919) % e.count
                    let p = model.arena.values.pointer + idx
                    let saved = p.pointee, h: Float = 1e-3
                    p.pointee = saved + h
                    let up = try value()
                    p.pointee = saved - h
                    let down = try value()
                    p.pointee = saved
                    let center = try value()
                    let a = Double(analytic[idx])
                    func relative(_ n: Double) -> Double { abs(n - a) / max(1.0, abs(n), abs(a)) }
                    var err = relative((up - down) / Double(2 * h))
                    // At a ReLU kink the one-sided slopes differ and backward picks one of them.
                    let fwd = (up - center) / Double(h), bwd = (center - down) / Double(h)
                    if err > 1e-2, abs(fwd - bwd) > 1e-2 { err = min(relative(fwd), relative(bwd)) }
                    XCTAssertLessThan(err, 1e-2, "\(norm) \(e.name)[\(idx - e.offset)]: analytic \(a)")
                }
            }
        }
    }

    // (f) Accumulating two micro-batches equals one batch made of their union.
    func testGradientAccumulationEqualsTheUnionBatch() throws {
        let model = Transformer(config: tiny(), seed: 9)
        let v = Self.vocab
        let sl = 5, tl = 4
        let sourceA: [Int32] = [4, 5, 6, 7, 8, 9, 4, 5, 0, 0], targetA: [Int32] = [1, 6, 7, 5, 1, 9, 0, 0]
        let sourceB: [Int32] = [10, 9, 8, 0, 0, 7, 7, 6, 5, 4], targetB: [Int32] = [1, 4, 0, 0, 1, 8, 10, 6]
        let r = randomValues(4 * tl * v, seed: 10)
        let half = 2 * tl * v
        // A sum over rows: each row's part of the loss sees its own slice of R.
        func backward(_ source: [Int32], _ target: [Int32], _ projection: ArraySlice<Float>, batch: Int) throws {
            let l = try model.forward(
                source: source, targetInput: target, batchSize: batch, sourceLength: sl,
                targetLength: tl, dropout: .disabled)
            for (i, value) in projection.enumerated() { l[i] = value }
            model.backward()
        }
        model.arena.zeroGradients()
        try backward(sourceA, targetA, r[0..<half], batch: 2)
        try backward(sourceB, targetB, r[half...], batch: 2)
        let accumulated = model.arena.gradients.array
        model.arena.zeroGradients()
        try backward(sourceA + sourceB, targetA + targetB, r[...], batch: 4)
        let union = model.arena.gradients.array
        let scale = union.map { abs($0) }.max() ?? 0
        XCTAssertGreaterThan(scale, 0)
        let worst = zip(accumulated, union).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-6 * scale, "worst \(worst) vs max magnitude \(scale)")
        // Not vacuous: one micro-batch alone is far from the union.
        model.arena.zeroGradients()
        try backward(sourceA, targetA, r[0..<half], batch: 2)
        let single = model.arena.gradients.array
        XCTAssertGreaterThan(zip(single, union).map { abs($0 - $1) }.max() ?? 0, 1e-3 * scale)
    }

    // (g) The arena layout of the base model, counted by hand.
    func testBaseParameterCount() {
        let v = 8000, d = 512, f = 2048, layers = 6
        let c = ModelConfig(
            vocabSize: v, dModel: d, heads: 8, dFF: f, encoderLayers: layers, decoderLayers: layers,
            dropout: 0.1, maxLen: 256, norm: .pre, tieEmbeddings: true, positional: .sinusoidal)
        let layout = ParameterLayout(config: c)
        let attention = (3 * d * d + 3 * d) + (d * d + d)  // in_proj + out_proj
        let feedForward = (f * d + f) + (d * f + d)  // linear1 + linear2
        let norm = 2 * d  // gamma + beta
        let encoderLayer = attention + feedForward + 2 * norm
        let decoderLayer = 2 * attention + feedForward + 3 * norm
        let expected = v * d + layers * encoderLayer + norm + layers * decoderLayer + norm
        XCTAssertEqual(encoderLayer, 3_152_384)
        XCTAssertEqual(decoderLayer, 4_204_032)
        XCTAssertEqual(expected, 48_236_544)
        XCTAssertEqual(layout.parameterCount, expected)
        print("base parameters (vocab \(v), tied): \(layout.parameterCount)")
        // Every tensor starts 16-float aligned, in order, without overlap; padding stays below 16 per tensor.
        var end = 0
        for e in layout.entries {
            XCTAssertEqual(e.offset % 16, 0, e.name)
            XCTAssertGreaterThanOrEqual(e.offset, end, e.name)
            XCTAssertLessThan(e.offset - end, 16, e.name)
            end = e.offset + e.count
        }
        XCTAssertGreaterThanOrEqual(layout.totalCount, end)
        XCTAssertEqual(layout.entries.count, 1 + layers * 12 + 2 + layers * 18 + 2)
        XCTAssertNil(layout["generator.weight"])
        // Untying adds one V x D matrix; learned positions add maxLen x D.
        var untied = c
        untied.tieEmbeddings = false
        untied.positional = .learned
        XCTAssertEqual(ParameterLayout(config: untied).parameterCount, expected + v * d + 256 * d)
    }
}
