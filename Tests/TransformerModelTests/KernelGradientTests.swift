import TensorCore
import TransformerModel
import XCTest

/// Random values in [-scale, scale), reproducible from `seed`.
func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = RandomStream(seed: seed, stream: 7)
    return (0..<count).map { _ in (rng.uniform() * 2 - 1) * scale }
}

/// Central finite differences of loss = sum(forward(inputs) * r) with respect to every element of
/// every input, compared with `analytic` (the kernel's backward given d(output) = r).
///
/// The forward runs in Float32; the loss is summed in Double. The error of each element is
/// |numeric - analytic| / max(1, |numeric|, |analytic|).
func assertGradients(
    _ inputs: [[Float]], names: [String], analytic: [[Float]], r: [Float],
    h: Float = 1e-3, tolerance: Double = 1e-2,
    forward: ([[Float]]) -> [Float],
    file: StaticString = #filePath, line: UInt = #line
) {
    func loss(_ x: [[Float]]) -> Double {
        let out = forward(x)
        precondition(out.count == r.count, "projection size \(r.count) != output size \(out.count)")
        var s = 0.0
        for i in 0..<out.count { s += Double(out[i]) * Double(r[i]) }
        return s
    }
    for a in inputs.indices {
        XCTAssertEqual(analytic[a].count, inputs[a].count, "\(names[a]) gradient size", file: file, line: line)
        // A check whose analytic gradient is all zero would pass for a backward that does nothing.
        XCTAssertGreaterThan(
            analytic[a].reduce(0) { $0 + abs($1) }, 0, "\(names[a]) gradient is all zero",
            file: file, line: line)
        var worst = 0.0
        var x = inputs
        for i in inputs[a].indices {
            let saved = x[a][i]
            x[a][i] = saved + h
            let up = loss(x)
            x[a][i] = saved - h
            let down = loss(x)
            x[a][i] = saved
            let numeric = (up - down) / Double(2 * h)
            let g = Double(analytic[a][i])
            let err = abs(numeric - g) / max(1, abs(numeric), abs(g))
            worst = max(worst, err)
            XCTAssertLessThan(
                err, tolerance, "\(names[a])[\(i)]: analytic \(g) numeric \(numeric)", file: file, line: line)
        }
        XCTAssertFalse(worst.isNaN, "\(names[a]) has NaN", file: file, line: line)
    }
}

/// Finite-difference checks of each kernel's backward in isolation, with a random projection loss
/// sum(out * R) so that d(loss)/d(out) = R.
final class KernelGradientTests: XCTestCase {
    // MARK: Linear

    func testLinearGradients() {
        let rows = 3, inF = 4, outF = 5
        let x = randomValues(rows * inF, seed: 1), w = randomValues(outF * inF, seed: 2),
            b = randomValues(outF, seed: 3)
        let r = randomValues(rows * outF, seed: 4)
        func forward(_ t: [[Float]]) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * outF)
            Linear.forward(t[0], rows: rows, inFeatures: inF, outFeatures: outF, weight: t[1], bias: t[2], output: &y)
            return y
        }
        var dx = [Float](repeating: .nan, count: rows * inF)  // overwritten when accumulateInput is false
        var dw = [Float](repeating: 0, count: outF * inF), db = [Float](repeating: 0, count: outF)
        Linear.backward(
            r, input: x, rows: rows, inFeatures: inF, outFeatures: outF, weight: w,
            inputGradient: &dx, accumulateInput: false, weightGradient: &dw, biasGradient: &db)
        // Linear in each input: differences are exact up to rounding, so the tolerance is tight.
        assertGradients(
            [x, w, b], names: ["dx", "dW", "db"], analytic: [dx, dw, db], r: r, tolerance: 1e-3,
            forward: forward)
    }

    func testLinearForwardHandValues() {
        // x = [[1, 2]], W = [[1, 0], [0, 1], [1, 1]] ([out 3, in 2]), b = [0.5, -1, 2] -> [1.5, 1, 5].
        var y = [Float](repeating: 0, count: 3)
        Linear.forward(
            [1, 2], rows: 1, inFeatures: 2, outFeatures: 3, weight: [1, 0, 0, 1, 1, 1], bias: [0.5, -1, 2],
            output: &y)
        XCTAssertEqual(y, [1.5, 1, 5])
        Linear.forward(
            [1, 2], rows: 1, inFeatures: 2, outFeatures: 3, weight: [1, 0, 0, 1, 1, 1], bias: nil, output: &y)
        XCTAssertEqual(y, [1, 2, 3])
    }

    func testLinearBackwardAccumulates() {
        let rows = 2, inF = 3, outF = 2
        let x = randomValues(rows * inF, seed: 5), w = randomValues(outF * inF, seed: 6),
            dy = randomValues(rows * outF, seed: 7)
        var dx1 = [Float](repeating: 0, count: rows * inF)
        var dw = [Float](repeating: 0, count: outF * inF), db = [Float](repeating: 0, count: outF)
        Linear.backward(
            dy, input: x, rows: rows, inFeatures: inF, outFeatures: outF, weight: w,
            inputGradient: &dx1, accumulateInput: false, weightGradient: &dw, biasGradient: &db)
        let dw1 = dw, db1 = db
        // A second call adds to dW, db and (with accumulateInput) dx: exactly twice the first.
        var dx2 = dx1
        Linear.backward(
            dy, input: x, rows: rows, inFeatures: inF, outFeatures: outF, weight: w,
            inputGradient: &dx2, accumulateInput: true, weightGradient: &dw, biasGradient: &db)
        XCTAssertEqual(dw, dw1.map { 2 * $0 })
        XCTAssertEqual(db, db1.map { 2 * $0 })
        XCTAssertEqual(dx2, dx1.map { 2 * $0 })
        // db is the column sum of dy.
        XCTAssertEqual(db1[0], dy[0] + dy[2], accuracy: 1e-6)
        XCTAssertEqual(db1[1], dy[1] + dy[3], accuracy: 1e-6)
    }

    // MARK: LayerNorm

    func testLayerNormGradients() {
        let rows = 3, d = 6
        // Rows with different means and spreads, so the mean and variance terms both matter.
        var x = randomValues(rows * d, seed: 11)
        for j in 0..<d {
            x[d + j] = x[d + j] * 3 + 2
            x[2 * d + j] = x[2 * d + j] * 0.5 - 1
        }
        let gamma = randomValues(d, seed: 12).map { 1 + $0 * 0.5 }, beta = randomValues(d, seed: 13)
        let r = randomValues(rows * d, seed: 14)
        func forward(_ t: [[Float]]) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * d)
            var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
            LayerNormKernel.forward(
                t[0], rows: rows, width: d, gamma: t[1], beta: t[2], output: &y, mean: &mean, rstd: &rstd)
            return y
        }
        var y = [Float](repeating: 0, count: rows * d)
        var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
        LayerNormKernel.forward(x, rows: rows, width: d, gamma: gamma, beta: beta, output: &y, mean: &mean, rstd: &rstd)
        var dx = [Float](repeating: 0, count: rows * d)
        var dgamma = [Float](repeating: 0, count: d), dbeta = [Float](repeating: 0, count: d)
        LayerNormKernel.backward(
            r, input: x, rows: rows, width: d, gamma: gamma, mean: mean, rstd: rstd,
            inputGradient: &dx, gammaGradient: &dgamma, betaGradient: &dbeta)
        assertGradients(
            [x, gamma, beta], names: ["dx", "dgamma", "dbeta"], analytic: [dx, dgamma, dbeta], r: r,
            forward: forward)

        // Backward accumulates: a second call doubles every gradient.
        let dx1 = dx, dgamma1 = dgamma, dbeta1 = dbeta
        LayerNormKernel.backward(
            r, input: x, rows: rows, width: d, gamma: gamma, mean: mean, rstd: rstd,
            inputGradient: &dx, gammaGradient: &dgamma, betaGradient: &dbeta)
        XCTAssertEqual(dx, dx1.map { 2 * $0 })
        for j in 0..<d {
            XCTAssertEqual(dgamma[j], 2 * dgamma1[j], accuracy: 1e-5)
            XCTAssertEqual(dbeta[j], 2 * dbeta1[j], accuracy: 1e-5)
        }
    }

    // MARK: Attention

    /// One attention problem: Q [B*Sq, ldq], K [B*Sk, ldk], V [B*Sk, ldv] with the heads in the first
    /// H*dk columns (the rest is padding the kernel must not read or write).
    struct AttentionCase {
        var shape: AttentionShape
        var keyMask: [Bool]?
        var causal: Bool
        var dropout = DropoutContext.disabled
        var ldq: Int { shape.modelWidth + 1 }
        var ldk: Int { shape.modelWidth + 2 }
        var ldv: Int { shape.modelWidth + 3 }
        var outputCount: Int { shape.batch * shape.queryLength * shape.modelWidth }

        func inputs(seed: UInt64) -> [[Float]] {
            let s = shape
            return [
                randomValues(s.batch * s.queryLength * ldq, seed: seed, scale: 1.5),
                randomValues(s.batch * s.keyLength * ldk, seed: seed + 1, scale: 1.5),
                randomValues(s.batch * s.keyLength * ldv, seed: seed + 2),
            ]
        }

        func withMask(_ body: (UnsafePointer<Bool>?) -> Void) {
            guard let keyMask else { return body(nil) }
            keyMask.withUnsafeBufferPointer { body($0.baseAddress) }
        }

        /// Output [B*Sq, H*dk] and probabilities [B,H,Sq,Sk].
        func forward(_ t: [[Float]]) -> (output: [Float], probs: [Float]) {
            var probs = [Float](repeating: .nan, count: shape.probabilityCount)
            var dropped = [Float](repeating: .nan, count: shape.probabilityCount)
            var out = [Float](repeating: .nan, count: outputCount)
            probs.withUnsafeMutableBufferPointer { p in
                dropped.withUnsafeMutableBufferPointer { dp in
                    withMask { mask in
                        AttentionKernel.forward(
                            q: t[0], ldq: ldq, k: t[1], ldk: ldk, v: t[2], ldv: ldv, shape: shape,
                            keyMask: mask, causal: causal, probs: p.baseAddress!,
                            dropped: dropout.isActive ? dp.baseAddress! : p.baseAddress!,
                            output: &out, dropout: dropout, site: 9)
                    }
                }
            }
            return (out, probs)
        }

        /// dQ, dK, dV (same layouts as the inputs; padding columns stay zero).
        func backward(_ t: [[Float]], outputGradient r: [Float]) -> [[Float]] {
            var probs = [Float](repeating: .nan, count: shape.probabilityCount)
            var dropped = [Float](repeating: .nan, count: shape.probabilityCount)
            var out = [Float](repeating: .nan, count: outputCount)
            var dq = [Float](repeating: 0, count: t[0].count), dk = [Float](repeating: 0, count: t[1].count)
            var dv = [Float](repeating: 0, count: t[2].count)
            var scratch = [Float](repeating: .nan, count: shape.probabilityCount)
            probs.withUnsafeMutableBufferPointer { p in
                dropped.withUnsafeMutableBufferPointer { dp in
                    let d = dropout.isActive ? dp.baseAddress! : p.baseAddress!
                    withMask { mask in
                        AttentionKernel.forward(
                            q: t[0], ldq: ldq, k: t[1], ldk: ldk, v: t[2], ldv: ldv, shape: shape,
                            keyMask: mask, causal: causal, probs: p.baseAddress!, dropped: d,
                            output: &out, dropout: dropout, site: 9)
                    }
                    AttentionKernel.backward(
                        outputGradient: r, q: t[0], ldq: ldq, k: t[1], ldk: ldk, v: t[2], ldv: ldv,
                        probs: p.baseAddress!, dropped: d, shape: shape, dropout: dropout,
                        dq: &dq, dk: &dk, dv: &dv, scratch: &scratch)
                }
            }
            return [dq, dk, dv]
        }
    }

    func checkAttention(_ c: AttentionCase, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let x = c.inputs(seed: seed)
        let r = randomValues(c.outputCount, seed: seed + 10)
        let analytic = c.backward(x, outputGradient: r)
        for g in analytic { XCTAssertFalse(g.contains { !$0.isFinite }, "non-finite gradient", file: file, line: line) }
        assertGradients(
            x, names: ["dq", "dk", "dv"], analytic: analytic, r: r, forward: { c.forward($0).output },
            file: file, line: line)
        // Gradients of masked keys (visible to no query) are exactly zero.
        if let mask = c.keyMask {
            let s = c.shape
            for b in 0..<s.batch {
                for j in 0..<s.keyLength where !mask[b * s.keyLength + j] {
                    for col in 0..<s.modelWidth {
                        XCTAssertEqual(
                            analytic[1][(b * s.keyLength + j) * c.ldk + col], 0, "dk of masked key", file: file,
                            line: line)
                        XCTAssertEqual(
                            analytic[2][(b * s.keyLength + j) * c.ldv + col], 0, "dv of masked key", file: file,
                            line: line)
                    }
                }
            }
        }
    }

    func testAttentionWithKeyMask() {
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 4, keyLength: 4, headDim: 3)
        let mask = [true, true, false, true, true, true, true, false]
        checkAttention(AttentionCase(shape: s, keyMask: mask, causal: false), seed: 100)
    }

    func testAttentionCausalWithKeyMask() {
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 4, keyLength: 4, headDim: 3)
        let mask = [true, true, true, false, true, false, true, true]
        checkAttention(AttentionCase(shape: s, keyMask: mask, causal: true), seed: 200)
    }

    func testAttentionCausalWithoutMask() {
        let s = AttentionShape(batch: 1, heads: 3, queryLength: 5, keyLength: 5, headDim: 2)
        checkAttention(AttentionCase(shape: s, keyMask: nil, causal: true), seed: 300)
    }

    func testAttentionQueryLengthDiffersFromKeyLength() {
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 3, keyLength: 5, headDim: 2)
        let mask = [true, true, true, true, false, true, false, true, false, false]
        checkAttention(AttentionCase(shape: s, keyMask: mask, causal: false), seed: 400)
    }

    func testAttentionCausalWithQueryOffset() {
        // Two new queries at absolute positions 3 and 4 over 5 keys (decoding with a cache).
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 2, keyLength: 5, headDim: 2, queryOffset: 3)
        checkAttention(AttentionCase(shape: s, keyMask: nil, causal: true), seed: 450)
    }

    func testAttentionWithFullyMaskedRows() {
        // Batch entry 1 has no visible key at all; in batch entry 0, causal query 0 sees only key 0,
        // which is masked, so that row is empty too.
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 3, keyLength: 3, headDim: 2)
        let mask = [false, true, true, false, false, false]
        let c = AttentionCase(shape: s, keyMask: mask, causal: true)
        checkAttention(c, seed: 500)
        let x = c.inputs(seed: 500)
        let (out, probs) = c.forward(x)
        let d = s.modelWidth
        XCTAssertFalse(out.contains { !$0.isFinite })
        XCTAssertFalse(probs.contains { !$0.isFinite })
        for i in 0..<s.queryLength {
            XCTAssertEqual(Array(out[(3 + i) * d..<(4 + i) * d]), [Float](repeating: 0, count: d))
        }
        XCTAssertEqual(Array(out[0..<d]), [Float](repeating: 0, count: d))
        // The other rows of batch entry 0 are not empty.
        XCTAssertNotEqual(Array(out[d..<(2 * d)]), [Float](repeating: 0, count: d))
        let grads = c.backward(x, outputGradient: randomValues(c.outputCount, seed: 501))
        for i in 0..<s.queryLength {
            for col in 0..<d { XCTAssertEqual(grads[0][(3 + i) * c.ldq + col], 0, "dq of an empty row") }
        }
        for col in 0..<d { XCTAssertEqual(grads[0][col], 0, "dq of the causal empty row") }
    }

    func testAttentionWithDropoutGradients() {
        // The mask is a pure function of the context, so the forward is a fixed smooth function of Q, K, V.
        let s = AttentionShape(batch: 2, heads: 2, queryLength: 4, keyLength: 3, headDim: 2)
        var c = AttentionCase(shape: s, keyMask: [true, true, true, true, false, true], causal: false)
        c.dropout = DropoutContext(seed: 42, step: 3, microBatch: 1, rate: 0.3)
        checkAttention(c, seed: 600)
        // Some probabilities were actually dropped, and kept ones scaled by 1/(1 - rate).
        let x = c.inputs(seed: 600)
        var undropped = c
        undropped.dropout = .disabled
        let withDrop = c.forward(x).output, without = undropped.forward(x).output
        XCTAssertNotEqual(withDrop, without)
    }

    // MARK: Dropout

    func dropoutMask(count: Int, context: DropoutContext, site: UInt32) -> [Float] {
        let ones = [Float](repeating: 1, count: count)
        var out = [Float](repeating: .nan, count: count)
        Dropout.apply(ones, &out, count: count, context: context, site: site)
        return out
    }

    func testDropoutIsReproducibleAndKeepsTheRightFraction() {
        for rate: Float in [0.1, 0.5] {
            let ctx = DropoutContext(seed: 1234, step: 7, microBatch: 2, rate: rate)
            let n = 100_000
            let a = dropoutMask(count: n, context: ctx, site: 5), b = dropoutMask(count: n, context: ctx, site: 5)
            XCTAssertEqual(a, b, "same context, same mask")
            let scale = 1 / (1 - rate)
            XCTAssertTrue(a.allSatisfy { $0 == 0 || $0 == scale }, "kept values are scaled by exactly 1/(1-rate)")
            let kept = Double(a.filter { $0 != 0 }.count) / Double(n)
            XCTAssertEqual(kept, Double(1 - rate), accuracy: 0.01 * Double(1 - rate), "kept fraction at rate \(rate)")
        }
    }

    func testDropoutMasksDependOnEveryCounter() {
        let base = DropoutContext(seed: 1, step: 2, microBatch: 3, rate: 0.5)
        let reference = dropoutMask(count: 256, context: base, site: 4)
        var other = base
        other.seed = 9
        XCTAssertNotEqual(dropoutMask(count: 256, context: other, site: 4), reference, "seed")
        other = base
        other.step = 5
        XCTAssertNotEqual(dropoutMask(count: 256, context: other, site: 4), reference, "step")
        other = base
        other.microBatch = 4
        XCTAssertNotEqual(dropoutMask(count: 256, context: other, site: 4), reference, "micro-batch")
        XCTAssertNotEqual(dropoutMask(count: 256, context: base, site: 6), reference, "site")
    }

    func testDropoutBackwardUsesTheForwardMask() {
        let n = 1000
        let ctx = DropoutContext(seed: 77, step: 1, microBatch: 0, rate: 0.25)
        let x = randomValues(n, seed: 31).map { $0 + 2 }  // never zero
        var y = [Float](repeating: 0, count: n)
        Dropout.apply(x, &y, count: n, context: ctx, site: 3)
        // Backward is the same call on the gradient: zero exactly where the forward dropped,
        // g/(1-rate) exactly where it kept.
        let g = randomValues(n, seed: 32).map { $0 + 2 }
        var dg = g
        dg.withUnsafeMutableBufferPointer {
            Dropout.apply($0.baseAddress!, $0.baseAddress!, count: n, context: ctx, site: 3)
        }
        var dropped = 0
        for i in 0..<n {
            if y[i] == 0 {
                dropped += 1
                XCTAssertEqual(dg[i], 0)
            } else {
                XCTAssertEqual(y[i], x[i] * ctx.keepScale)
                XCTAssertEqual(dg[i], g[i] * ctx.keepScale)
            }
        }
        XCTAssertGreaterThan(dropped, 150)
        XCTAssertLessThan(dropped, 350)
    }

    func testDropoutMaskDependsOnlyOnTheElementIndex() {
        // Applying to arbitrary sub-ranges (as threads do) gives the same mask as one call.
        let n = 1037
        let ctx = DropoutContext(seed: 5, step: 11, microBatch: 1, rate: 0.3)
        let whole = dropoutMask(count: n, context: ctx, site: 8)
        let ones = [Float](repeating: 1, count: n)
        var pieces = [Float](repeating: .nan, count: n)
        for bounds in [0..<3, 3..<13, 13..<512, 512..<519, 519..<n] {
            Dropout.apply(ones, &pieces, range: bounds, context: ctx, site: 8)
        }
        XCTAssertEqual(pieces, whole)
    }

    func testDisabledDropoutCopies() {
        let x = randomValues(50, seed: 41)
        var y = [Float](repeating: .nan, count: 50)
        Dropout.apply(x, &y, count: 50, context: .disabled, site: 1)
        XCTAssertEqual(y, x)
        XCTAssertFalse(DropoutContext.disabled.isActive)
    }
}
