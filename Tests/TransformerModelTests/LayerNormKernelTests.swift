import CKernels
import TensorCore
import TransformerModel
import XCTest

/// `ckernels_layernorm_*` (what `LayerNormKernel` runs): PyTorch's definition against a Double
/// reference, and each row's bits fixed whatever the CPU path, the rows per call, the column split
/// of the parameter gradients, the thread count, or whether the residual sum is fused in.
/// (The gradients' correctness is `KernelGradientTests.testLayerNorm`, by finite differences.)
final class LayerNormKernelTests: XCTestCase {
    /// No full lane block (1, 7), exact blocks (8, 256), tails (37, 300) and the decoder widths.
    let widths = [1, 7, 8, 37, 256, 300, 512]
    let rows = 5

    struct Forward: Equatable {
        var y: [UInt32], mean: [UInt32], rstd: [UInt32], sum: [UInt32]
    }

    /// Rows with different means and spreads (row r is scaled by r + 1 and shifted by 2r - 3).
    func input(_ d: Int, seed: UInt64) -> [Float] {
        let v = randomValues(rows * d, seed: seed)
        return v.indices.map { v[$0] * Float($0 / d + 1) + Float(2 * ($0 / d) - 3) }
    }

    func forward(_ x: [Float], add: [Float]?, d: Int, avx2: Int32, rowsPerCall: Int? = nil) -> Forward {
        let gamma = randomValues(d, seed: 21).map { 1 + $0 / 2 }, beta = randomValues(d, seed: 22)
        var y = [Float](repeating: .nan, count: rows * d), sum = [Float](repeating: .nan, count: rows * d)
        var mean = [Float](repeating: .nan, count: rows), rstd = [Float](repeating: .nan, count: rows)
        let step = rowsPerCall ?? rows
        y.withUnsafeMutableBufferPointer { yp in
            sum.withUnsafeMutableBufferPointer { sp in
                mean.withUnsafeMutableBufferPointer { mp in
                    rstd.withUnsafeMutableBufferPointer { rp in
                        for first in stride(from: 0, to: rows, by: step) {
                            let count = min(step, rows - first)
                            let xr = Array(x[(first * d)...]), ar = add.map { Array($0[(first * d)...]) }
                            ckernels_layernorm_forward_path(
                                avx2, xr, ar, ar == nil ? nil : sp.baseAddress! + first * d, Int64(count), Int64(d),
                                gamma, beta, LayerNormKernel.epsilon, yp.baseAddress! + first * d,
                                mp.baseAddress! + first, rp.baseAddress! + first)
                        }
                    }
                }
            }
        }
        return Forward(
            y: y.map(\.bitPattern), mean: mean.map(\.bitPattern), rstd: rstd.map(\.bitPattern),
            sum: add == nil ? [] : sum.map(\.bitPattern))
    }

    func testForwardMatchesDoubleReference() {
        for d in widths where d > 1 {
            let x = input(d, seed: 23)
            let gamma = randomValues(d, seed: 21).map { 1 + $0 / 2 }, beta = randomValues(d, seed: 22)
            let got = forward(x, add: nil, d: d, avx2: ckernels_layernorm_uses_avx2())
            for r in 0..<rows {
                let row = x[(r * d)..<((r + 1) * d)].map(Double.init)
                let mu = row.reduce(0, +) / Double(d)
                let variance = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(d)
                let rs = 1 / (variance + Double(LayerNormKernel.epsilon)).squareRoot()
                XCTAssertEqual(Double(Float(bitPattern: got.mean[r])), mu, accuracy: 1e-6 * (abs(mu) + 1), "d \(d)")
                XCTAssertEqual(Double(Float(bitPattern: got.rstd[r])), rs, accuracy: 1e-5 * rs, "d \(d)")
                for j in 0..<d {
                    let want = (row[j] - mu) * rs * Double(gamma[j]) + Double(beta[j])
                    XCTAssertEqual(
                        Double(Float(bitPattern: got.y[r * d + j])), want, accuracy: 1e-5 * (abs(want) + 1),
                        "d \(d) row \(r) column \(j)")
                }
            }
        }
        // A row of one element normalises to beta (zero variance, eps keeps rstd finite).
        let one = forward([3, -1, 0, 7, 2], add: nil, d: 1, avx2: ckernels_layernorm_uses_avx2())
        let beta = randomValues(1, seed: 22)[0]
        XCTAssertEqual(one.y, [UInt32](repeating: beta.bitPattern, count: rows))
    }

    func testForwardBitsDoNotDependOnPathRowsOrFusedResidual() {
        XCTAssertEqual(
            ckernels_layernorm_uses_avx2(), 1, "this test is meant to compare the AVX2 path with the scalar one")
        for d in widths {
            let x = input(d, seed: 24), add = randomValues(rows * d, seed: 25)
            let whole = forward(x, add: nil, d: d, avx2: 1)
            XCTAssertEqual(whole, forward(x, add: nil, d: d, avx2: 0), "d \(d): AVX2 vs scalar")
            XCTAssertEqual(whole, forward(x, add: nil, d: d, avx2: 1, rowsPerCall: 1), "d \(d): one row per call")
            XCTAssertEqual(whole, forward(x, add: nil, d: d, avx2: 0, rowsPerCall: 2), "d \(d): scalar, 2 rows")
            // Fused: the sum is x + add, and the norm of it is the norm of the precomputed sum.
            let s = zip(x, add).map { $0 + $1 }
            let fused = forward(x, add: add, d: d, avx2: 1)
            XCTAssertEqual(fused.sum, s.map(\.bitPattern), "d \(d): fused sum")
            var unfused = forward(s, add: nil, d: d, avx2: 1)
            unfused.sum = fused.sum
            XCTAssertEqual(fused, unfused, "d \(d): fused vs LayerNorm of the sum")
            XCTAssertEqual(fused, forward(x, add: add, d: d, avx2: 0, rowsPerCall: 3), "d \(d): fused, scalar")
        }
    }

    func testBackwardBitsDoNotDependOnPathRowsOrColumnSplit() {
        XCTAssertEqual(
            ckernels_layernorm_uses_avx2(), 1, "this test is meant to compare the AVX2 path with the scalar one")
        for d in widths {
            let x = input(d, seed: 26), dy = randomValues(rows * d, seed: 27), dx0 = randomValues(rows * d, seed: 28)
            let gamma = randomValues(d, seed: 21).map { 1 + $0 / 2 }
            let stats = forward(x, add: nil, d: d, avx2: 1)
            let mean = stats.mean.map(Float.init(bitPattern:)), rstd = stats.rstd.map(Float.init(bitPattern:))
            func inputGradient(avx2: Int32, rowsPerCall: Int) -> [UInt32] {
                var dx = dx0
                dx.withUnsafeMutableBufferPointer { dxp in
                    for first in stride(from: 0, to: rows, by: rowsPerCall) {
                        let count = min(rowsPerCall, rows - first)
                        ckernels_layernorm_input_gradient_path(
                            avx2, Array(dy[(first * d)...]), Array(x[(first * d)...]), Int64(count), Int64(d), gamma,
                            Array(mean[first...]), Array(rstd[first...]), dxp.baseAddress! + first * d)
                    }
                }
                return dx.map(\.bitPattern)
            }
            /// The columns in the given pieces (each a call), on gradients that start nonzero.
            func parameterGradients(avx2: Int32, cuts: [Int]) -> [UInt32] {
                var dgamma = randomValues(d, seed: 29), dbeta = randomValues(d, seed: 30)
                let bounds = [0] + cuts.filter { $0 > 0 && $0 < d } + [d]
                for (a, b) in zip(bounds, bounds.dropFirst()) {
                    ckernels_layernorm_parameter_gradients_path(
                        avx2, dy, x, Int64(rows), Int64(d), Int64(a), Int64(b), mean, rstd, &dgamma, &dbeta)
                }
                return (dgamma + dbeta).map(\.bitPattern)
            }
            let dx = inputGradient(avx2: 1, rowsPerCall: rows)
            XCTAssertEqual(dx, inputGradient(avx2: 0, rowsPerCall: rows), "d \(d): dx AVX2 vs scalar")
            XCTAssertEqual(dx, inputGradient(avx2: 1, rowsPerCall: 2), "d \(d): dx 2 rows per call")
            if d > 1 {  // A one-element row's norm is constant: its input gradient is exactly 0.
                XCTAssertNotEqual(dx, dx0.map(\.bitPattern), "d \(d): dx accumulates")
            } else {
                XCTAssertEqual(dx, dx0.map(\.bitPattern), "d 1: nothing to add")
            }
            let params = parameterGradients(avx2: 1, cuts: [])
            XCTAssertEqual(params, parameterGradients(avx2: 0, cuts: []), "d \(d): parameters AVX2 vs scalar")
            XCTAssertEqual(params, parameterGradients(avx2: 1, cuts: [5, 40, 41, 299]), "d \(d): split columns")
            XCTAssertEqual(params, parameterGradients(avx2: 0, cuts: [3, 8]), "d \(d): scalar, split columns")
        }
    }

    /// Through `LayerNormKernel` (the Swift entry the layers call): 1 and 2 threads, same bits.
    func testThreadCountChangesNoBit() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let n = 64, d = 512
        let x = randomValues(n * d, seed: 31), add = randomValues(n * d, seed: 32), dy = randomValues(n * d, seed: 33)
        let gamma = randomValues(d, seed: 34), beta = randomValues(d, seed: 35)
        func run(threads: Int) -> [[UInt32]] {
            Parallel.threads = threads
            var y = [Float](repeating: 0, count: n * d), s = y, dx = y
            var mean = [Float](repeating: 0, count: n), rstd = mean
            var dgamma = [Float](repeating: 0, count: d), dbeta = dgamma
            LayerNormKernel.forward(
                x, adding: add, sum: &s, rows: n, width: d, gamma: gamma, beta: beta, output: &y, mean: &mean,
                rstd: &rstd)
            LayerNormKernel.backward(
                dy, input: s, rows: n, width: d, gamma: gamma, mean: mean, rstd: rstd, inputGradient: &dx,
                gammaGradient: &dgamma, betaGradient: &dbeta)
            return [y, s, mean, rstd, dx, dgamma, dbeta].map { $0.map(\.bitPattern) }
        }
        XCTAssertEqual(run(threads: 1), run(threads: 2))
    }
}
