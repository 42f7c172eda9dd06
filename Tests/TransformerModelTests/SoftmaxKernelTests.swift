import CKernels
import Foundation
import TensorCore
import TransformerModel
import XCTest

/// `ckernels_max_and_sum`, `ckernels_exp_sum`, `ckernels_scale_shift` (the loss over the
/// vocabulary and beam search's normaliser): exp against Double, and the same bits on both paths.
final class SoftmaxKernelTests: XCTestCase {
    /// No full lane block (1, 7), an exact one (8), tails (37), the vocabulary (8000) and one more.
    let lengths = [1, 7, 8, 37, 8000, 8001]

    func testExpMatchesDoubleOnSoftmaxRange() {
        // Every 1/64 from -87 to 0, through both paths.
        let x = (0...(87 * 64)).map { -Float($0) / 64 }
        for avx2: Int32 in [0, 1] where avx2 == 0 || ckernels_softmax_uses_avx2() == 1 {
            var e = [Float](repeating: .nan, count: x.count)
            _ = ckernels_exp_sum_path(avx2, x, Int64(x.count), 0, &e)
            var worst = 0.0
            for (xi, ei) in zip(x, e) { worst = max(worst, abs(Double(ei) / Foundation.exp(Double(xi)) - 1)) }
            XCTAssertLessThan(worst, 3e-7, "path \(avx2): worst relative error")
        }
        // Below -87 clamps to exp(-87) (not 0); NaN stays NaN; exp(0) is exactly 1.
        var out = [Float](repeating: 0, count: 3)
        _ = ckernels_exp_sum([-1000, .nan, 0], 3, 0, &out)
        XCTAssertEqual(Double(out[0]), Foundation.exp(-87.0), accuracy: 1e-44)
        XCTAssertTrue(out[1].isNaN)
        XCTAssertEqual(out[2], 1)
    }

    func testBothPathsGiveTheSameBits() {
        XCTAssertEqual(
            ckernels_softmax_uses_avx2(), 1, "this test is meant to compare the AVX2 path with the scalar one")
        for n in lengths {
            let x = randomValues(n, seed: 51, scale: 12)
            var max0: Float = 0, sum0: Float = 0, max1: Float = 0, sum1: Float = 0
            ckernels_max_and_sum_path(0, x, Int64(n), &max0, &sum0)
            ckernels_max_and_sum_path(1, x, Int64(n), &max1, &sum1)
            XCTAssertEqual(max0, x.max()!, "n \(n): max")
            XCTAssertEqual([max0.bitPattern, sum0.bitPattern], [max1.bitPattern, sum1.bitPattern], "n \(n)")
            XCTAssertEqual(Double(sum0), x.reduce(0.0) { $0 + Double($1) }, accuracy: 1e-4 * Double(n), "n \(n): sum")
            var e0 = x, e1 = x
            let s0 = ckernels_exp_sum_path(0, x, Int64(n), max0, &e0)
            let s1 = ckernels_exp_sum_path(1, x, Int64(n), max0, &e1)
            XCTAssertEqual(s0.bitPattern, s1.bitPattern, "n \(n): exp sum")
            XCTAssertEqual(e0.map(\.bitPattern), e1.map(\.bitPattern), "n \(n): exps")
            XCTAssertEqual(
                s0.bitPattern, ckernels_exp_sum_path(1, x, Int64(n), max0, nil).bitPattern, "n \(n): no store")
            let want = x.reduce(0.0) { $0 + Foundation.exp(Double($1 - max0)) }
            XCTAssertEqual(Double(s0), want, accuracy: 1e-6 * want, "n \(n): exp sum vs Double")
            ckernels_scale_shift_path(0, &e0, Int64(n), 0.37, 0.011)
            ckernels_scale_shift_path(1, &e1, Int64(n), 0.37, 0.011)
            XCTAssertEqual(e0.map(\.bitPattern), e1.map(\.bitPattern), "n \(n): scale and shift")
        }
    }

    func testFirstIndexOf() {
        var x = [Float](repeating: 0, count: 37)
        XCTAssertEqual(ckernels_first_index_of(x, 37, 1), 37)
        for j in [36, 20, 9, 8, 3, 0] {
            x[j] = 1
            XCTAssertEqual(ckernels_first_index_of(x, 37, 1), Int64(j))
        }
        XCTAssertEqual(ckernels_first_index_of(x, 0, 1), 0)
    }

    /// Attention rows: visible entries against a Double softmax, invisible ones exactly 0, a row
    /// with nothing visible all 0, and the same bits on both paths, for every prefix limit.
    func testAttentionSoftmaxRowMasksAndMatchesDouble() {
        for columns in [1, 5, 8, 13, 32, 37] {
            let scores = randomValues(columns, seed: UInt64(columns), scale: 6)
            let visible = (0..<columns).map { $0 % 3 != 1 }
            for limit in 0...columns {
                for mask in [nil, visible] {
                    var rows: [[Float]] = []
                    for avx2: Int32 in [0, 1] where avx2 == 0 || ckernels_softmax_uses_avx2() == 1 {
                        var row = scores
                        mask.withOptionalBuffer {
                            ckernels_attention_softmax_row_path(avx2, &row, Int64(columns), Int64(limit), $0)
                        }
                        rows.append(row)
                    }
                    if rows.count == 2 {
                        XCTAssertEqual(
                            rows[0].map(\.bitPattern), rows[1].map(\.bitPattern), "columns \(columns) limit \(limit)")
                    }
                    let shown = (0..<columns).filter { $0 < limit && (mask?[$0] ?? true) }
                    let top = shown.map { Double(scores[$0]) }.max() ?? 0
                    let total = shown.reduce(0.0) { $0 + Foundation.exp(Double(scores[$1]) - top) }
                    for j in 0..<columns {
                        let want = shown.contains(j) ? Foundation.exp(Double(scores[j]) - top) / total : 0
                        if want == 0 {
                            XCTAssertEqual(rows[0][j].bitPattern, 0, "columns \(columns) limit \(limit) entry \(j): +0")
                        } else {
                            XCTAssertEqual(
                                Double(rows[0][j]), want, accuracy: 1e-6 * want,
                                "columns \(columns) limit \(limit) entry \(j)")
                        }
                    }
                }
            }
        }
    }

    /// Softmax's backward with and without dropout against Double, the same bits on both paths.
    func testSoftmaxBackwardRowMatchesDouble() {
        let keep: Float = 1 / 0.9
        for n in [1, 7, 8, 33, 64] {
            var p = randomValues(n, seed: 90 + UInt64(n)).map { Foundation.exp($0) }
            let total = p.reduce(0, +)
            p = p.map { $0 / total }
            let dropped = p.enumerated().map { $0.offset % 4 == 2 ? 0 : $0.element * keep }
            let g = randomValues(n, seed: 190 + UInt64(n), scale: 3)
            for withDropout in [false, true] {
                var results: [[Float]] = []
                for avx2: Int32 in [0, 1] where avx2 == 0 || ckernels_softmax_uses_avx2() == 1 {
                    var out = g
                    if withDropout {
                        ckernels_softmax_backward_row_path(avx2, p, dropped, keep, &out, Int64(n))
                    } else {
                        ckernels_softmax_backward_row_path(avx2, p, nil, keep, &out, Int64(n))
                    }
                    results.append(out)
                }
                if results.count == 2 {
                    XCTAssertEqual(
                        results[0].map(\.bitPattern), results[1].map(\.bitPattern), "n \(n) dropout \(withDropout)")
                }
                let through = (0..<n).map { j -> Double in
                    withDropout ? (dropped[j] != 0 ? Double(g[j]) * Double(keep) : 0) : Double(g[j])
                }
                let dot = (0..<n).reduce(0.0) { $0 + through[$1] * Double(p[$1]) }
                for j in 0..<n {
                    let want = Double(p[j]) * (through[j] - dot)
                    XCTAssertEqual(
                        Double(results[0][j]), want, accuracy: 1e-5, "n \(n) dropout \(withDropout) entry \(j)")
                }
            }
        }
    }
}

extension Optional where Wrapped == [Bool] {
    /// The array's storage as a C `const bool *`, or NULL.
    fileprivate func withOptionalBuffer<R>(_ body: (UnsafePointer<Bool>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
