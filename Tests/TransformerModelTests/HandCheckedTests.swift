import TensorCore
import TransformerModel
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Known answers computed by hand (the seed document's cases, corrected per SPEC.md).
final class HandCheckedTests: XCTestCase {
    /// Runs single-batch attention and returns (output [Sq, H*dk], probabilities [H, Sq, Sk]).
    func attend(
        q: [Float], k: [Float], v: [Float], shape s: AttentionShape, keyMask: [Bool]? = nil,
        causal: Bool = false
    ) -> (output: [Float], probs: [Float]) {
        var probs = [Float](repeating: .nan, count: s.probabilityCount)
        var out = [Float](repeating: .nan, count: s.batch * s.queryLength * s.modelWidth)
        let d = s.modelWidth
        probs.withUnsafeMutableBufferPointer { p in
            func run(_ mask: UnsafePointer<Bool>?) {
                AttentionKernel.forward(
                    q: q, ldq: d, k: k, ldk: d, v: v, ldv: d, shape: s, keyMask: mask, causal: causal,
                    probs: p.baseAddress!, dropped: p.baseAddress!, output: &out,
                    dropout: .disabled, site: 0)
            }
            if let keyMask { keyMask.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
        }
        return (out, probs)
    }

    func testScores210GiveTheSeedDocumentsOutput() {
        // One head of width 2, so scale = 1/sqrt(2): q = [sqrt 2, 0] and keys [2,0], [1,0], [0,0]
        // give scaled scores exactly [2, 1, 0]. softmax = [0.66524, 0.24473, 0.09003].
        let s = AttentionShape(batch: 1, heads: 1, queryLength: 1, keyLength: 3, headDim: 2)
        let (out, probs) = attend(
            q: [Float(2).squareRoot(), 0], k: [2, 0, 1, 0, 0, 0], v: [1, 0, 0, 1, 1, 1], shape: s)
        let e2 = exp(2.0), e1 = exp(1.0), total = e2 + e1 + 1
        XCTAssertEqual(Double(probs[0]), e2 / total, accuracy: 1e-6)
        XCTAssertEqual(Double(probs[1]), e1 / total, accuracy: 1e-6)
        XCTAssertEqual(Double(probs[2]), 1 / total, accuracy: 1e-6)
        XCTAssertEqual(out[0], 0.75527, accuracy: 1e-5)
        XCTAssertEqual(out[1], 0.33476, accuracy: 1e-5)
    }

    func testIdentityQueriesAndKeysWithScaleOneOverRootTwo() {
        // Q = K = I (2x2, head width 2): scores I/sqrt(2); each row softmax([0.7071, 0]) = [0.670, 0.330].
        // (The seed document claims uniform weights; SPEC.md corrects it.)
        let s = AttentionShape(batch: 1, heads: 1, queryLength: 2, keyLength: 2, headDim: 2)
        let (out, probs) = attend(q: [1, 0, 0, 1], k: [1, 0, 0, 1], v: [1, 0, 0, 1], shape: s)
        let expected: [Float] = [0.670, 0.330, 0.330, 0.670]
        for i in 0..<4 { XCTAssertEqual(probs[i], expected[i], accuracy: 1e-3) }
        // Sharper: 1 / (1 + exp(-1/sqrt 2)) = 0.6697615.
        XCTAssertEqual(probs[0], 0.6697615, accuracy: 1e-6)
        // V = I, so the output is the weight matrix itself.
        for i in 0..<4 { XCTAssertEqual(out[i], probs[i], accuracy: 1e-6) }
    }

    func testAttentionRowsSumToOne() {
        let s = AttentionShape(batch: 2, heads: 3, queryLength: 4, keyLength: 5, headDim: 2)
        let d = s.modelWidth
        let mask = [true, false, true, true, false, false, true, true, true, true]
        let q = randomValues(s.batch * s.queryLength * d, seed: 1, scale: 3)
        let k = randomValues(s.batch * s.keyLength * d, seed: 2, scale: 3)
        let v = randomValues(s.batch * s.keyLength * d, seed: 3)
        for causal in [false, true] {
            let probs = attend(q: q, k: k, v: v, shape: s, keyMask: mask, causal: causal).probs
            for b in 0..<s.batch {
                for h in 0..<s.heads {
                    for i in 0..<s.queryLength {
                        let start: Int = ((b * s.heads + h) * s.queryLength + i) * s.keyLength
                        let row: [Float] = Array(probs[start..<(start + s.keyLength)])
                        // A row with no visible key (batch 1, causal row 0: key 0 is padding) is all zero.
                        let visible = (0..<s.keyLength).contains { mask[b * s.keyLength + $0] && (!causal || $0 <= i) }
                        XCTAssertEqual(
                            row.reduce(0, +), visible ? 1 : 0, accuracy: 1e-6, "b\(b) h\(h) row \(i) causal \(causal)")
                        for j in 0..<s.keyLength where !mask[b * s.keyLength + j] || (causal && j > i) {
                            XCTAssertEqual(row[j], 0, "hidden key \(j) has weight")
                        }
                        XCTAssertTrue(row.allSatisfy { $0 >= 0 })
                    }
                }
            }
        }
    }

    func testLayerNormHandValues() {
        // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25 -> xhat = (x - 2.5) / sqrt(1.25 + 1e-5).
        var y = [Float](repeating: 0, count: 4), mean: [Float] = [0], rstd: [Float] = [0]
        LayerNormKernel.forward(
            [1, 2, 3, 4], rows: 1, width: 4, gamma: [1, 1, 2, 1], beta: [0, 0, 0, 1],
            output: &y, mean: &mean, rstd: &rstd)
        let r = 1 / (1.25 + 1e-5).squareRoot()
        XCTAssertEqual(mean[0], 2.5)
        XCTAssertEqual(Double(rstd[0]), r, accuracy: 1e-6)
        let expected = [-1.5 * r, -0.5 * r, 2 * 0.5 * r, 1.5 * r + 1]
        for j in 0..<4 { XCTAssertEqual(Double(y[j]), expected[j], accuracy: 1e-6) }
    }

    // MARK: Sinusoidal positions, seen through the model

    /// PE(pos) for D = 4: [sin pos, cos pos, sin(pos/100), cos(pos/100)] (10000^(2/4) = 100).
    func expectedPositionalRow(_ pos: Int) -> [Double] {
        let p = Double(pos)
        return [sin(p), cos(p), sin(p / 100), cos(p / 100)]
    }

    func testSinusoidalRowsThroughAZeroLayerModel() throws {
        // The table builder is internal, so read it through the model: with no layers, zero embeddings
        // and an untied generator whose first rows are the identity, logits[pos][0..<4] =
        // LayerNorm(PE[pos]). LayerNorm is a per-row affine map, which cannot turn a wrong table
        // (cosine on even dimensions, wrong frequencies) into the right one.
        let c = ModelConfig(
            vocabSize: 6, dModel: 4, heads: 1, dFF: 4, encoderLayers: 0, decoderLayers: 0,
            dropout: 0, maxLen: 8, norm: .pre, tieEmbeddings: false, positional: .sinusoidal)
        let model = Transformer(config: c, seed: 1)
        XCTAssertTrue(model.arena.setValue("embedding.weight", [Float](repeating: 0, count: 6 * 4)))
        var generator = [Float](repeating: 0, count: 6 * 4)
        for j in 0..<4 { generator[j * 4 + j] = 1 }
        XCTAssertTrue(model.arena.setValue("generator.weight", generator))
        let length = 6
        let logits = try model.forward(
            source: [4, 5], targetInput: [Int32](repeating: 5, count: length), batchSize: 1,
            sourceLength: 2, targetLength: length, dropout: .disabled)
        for pos in 0..<length {
            let pe = expectedPositionalRow(pos)
            let mean = pe.reduce(0, +) / 4
            let variance = pe.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            let rs = 1 / (variance + 1e-5).squareRoot()
            for j in 0..<4 {
                XCTAssertEqual(
                    Double(logits[pos * 6 + j]), (pe[j] - mean) * rs, accuracy: 1e-5, "position \(pos) dim \(j)")
            }
        }
        // Position 0 is [0, 1, 0, 1] (sine on even dimensions): normalised [-1, 1, -1, 1].
        XCTAssertLessThan(logits[0], -0.99)
        XCTAssertGreaterThan(logits[1], 0.99)
    }

    // MARK: Padding mask, seen through the model

    func testPaddingMaskOfTheSeedExample() throws {
        // tokens [[1,2,3,0,0],[4,5,0,0,0]] -> mask [[T,T,T,F,F],[T,T,F,F,F]]. The mask buffer is
        // internal, so check its effect: each padded row gives the logits of the same sequence alone
        // without padding (so the F keys are ignored), and not those of a shorter prefix (so the T keys
        // are used).
        let c = ModelConfig(
            vocabSize: 11, dModel: 8, heads: 2, dFF: 16, encoderLayers: 2, decoderLayers: 2,
            dropout: 0, maxLen: 8)
        let model = Transformer(config: c, seed: 21)
        let target: [Int32] = [1, 6, 7, 1, 8, 9]
        let padded = try model.forward(
            source: [1, 2, 3, 0, 0, 4, 5, 0, 0, 0], targetInput: target, batchSize: 2,
            sourceLength: 5, targetLength: 3, dropout: .disabled)
        let both = Array(UnsafeBufferPointer(start: padded, count: 2 * 3 * 11))
        func alone(_ source: [Int32], _ t: ArraySlice<Int32>) throws -> [Float] {
            let l = try model.forward(
                source: source, targetInput: Array(t), batchSize: 1, sourceLength: source.count,
                targetLength: 3, dropout: .disabled)
            return Array(UnsafeBufferPointer(start: l, count: 3 * 11))
        }
        let rows: [([Int32], [Int32], ArraySlice<Int32>)] = [
            ([1, 2, 3], [1, 2], target[0..<3]), ([4, 5], [4], target[3..<6]),
        ]
        for (index, (visible, shorter, t)) in rows.enumerated() {
            let mine = Array(both[(index * 33)..<(index * 33 + 33)])
            let same = try alone(visible, t), prefix = try alone(shorter, t)
            for i in 0..<33 { XCTAssertEqual(mine[i], same[i], accuracy: 1e-5, "row \(index) logit \(i)") }
            let gap = zip(mine, prefix).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(gap, 1e-3, "row \(index): the last visible key must matter")
        }
    }
}

final class PositionalAndMaskTests: XCTestCase {
    /// The seed's d=4 rows: position 0 is [0, 1, 0, 1] (sin 0, cos 0, ...), position 1 is
    /// [sin 1, cos 1, sin 0.01, cos 0.01]: even dimensions use sine.
    func testSinusoidRowsForWidthFour() {
        let t = PositionalEncoding.sinusoids(length: 2, width: 4)
        XCTAssertEqual(Array(t[0..<4]), [0, 1, 0, 1])
        let e: [Float] = [sinf(1), cosf(1), sinf(0.01), cosf(0.01)]
        for j in 0..<4 { XCTAssertEqual(t[4 + j], e[j], accuracy: 1e-6) }
    }

    func testPaddingMaskOfSeedExample() {
        XCTAssertEqual(
            AttentionMask.keyPaddingMask([1, 2, 3, 0, 0, 4, 5, 0, 0, 0]),
            [true, true, true, false, false, true, true, false, false, false])
    }
}
