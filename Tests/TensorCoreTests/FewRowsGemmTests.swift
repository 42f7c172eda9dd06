import CKernels
import TensorCore
import XCTest

/// `BLAS.gemmFewRows` (`ckernels_gemm_nt`), the product decoding uses: correct against a Double
/// reference, and each output's bits fixed whatever the CPU path, the number of rows computed
/// together, the column split or the thread count.
final class FewRowsGemmTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, stream: 3)
        return (0..<count).map { _ in rng.uniform() * 2 - 1 }
    }

    /// k values cover no full lane block (1, 7), exact blocks (8, 64) and tails (13, 515); rows
    /// cover every tile remainder (1...9); n every column remainder, and the wide tiles of one row
    /// and of two rows (6 columns each) with and without remainders. The last three have more
    /// columns than the prefetch distance, so tiles also prefetch (up to the last row of w).
    let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 5, 7), (2, 3, 8), (3, 7, 13), (4, 8, 64), (5, 10, 515),
        (9, 70, 100), (48, 31, 96), (1, 29, 515), (2, 17, 13), (1, 24, 64),
        (1, 203, 40), (2, 131, 512), (4, 61, 520),
    ]

    func product(
        _ x: [Float], _ w: [Float], m: Int, n: Int, k: Int, ldx: Int, ldw: Int, ldy: Int, y0: [Float],
        accumulate: Bool, avx2: Bool = true
    ) -> [Float] {
        var y = y0
        if avx2 {
            ckernels_gemm_nt(
                x, Int64(m), Int64(ldx), w, Int64(n), Int64(ldw), Int64(k), &y, Int64(ldy), accumulate ? 1 : 0)
        } else {
            ckernels_gemm_nt_scalar(
                x, Int64(m), Int64(ldx), w, Int64(n), Int64(ldw), Int64(k), &y, Int64(ldy),
                accumulate ? 1 : 0)
        }
        return y
    }

    func testMatchesDoubleReferenceAndTouchesOnlyItsBlock() {
        for (m, n, k) in shapes {
            for accumulate in [false, true] {
                let ldx = k + 3, ldw = k + 1, ldy = n + 2
                let x = values(m * ldx, seed: 1), w = values(n * ldw, seed: 2), y0 = values(m * ldy, seed: 3)
                let y = product(x, w, m: m, n: n, k: k, ldx: ldx, ldw: ldw, ldy: ldy, y0: y0, accumulate: accumulate)
                for r in 0..<m {
                    for j in 0..<ldy {
                        let i = r * ldy + j
                        guard j < n else {
                            XCTAssertEqual(y[i].bitPattern, y0[i].bitPattern, "padding \(r),\(j)")
                            continue
                        }
                        var s = accumulate ? Double(y0[i]) : 0
                        for p in 0..<k { s += Double(x[r * ldx + p]) * Double(w[j * ldw + p]) }
                        XCTAssertEqual(
                            Double(y[i]), s, accuracy: 1e-5 * Double(k).squareRoot() + 1e-6, "\(m)x\(n)x\(k) \(r),\(j)")
                    }
                }
            }
        }
    }

    func testBitsDoNotDependOnCPUPathRowsOrColumnSplit() {
        XCTAssertEqual(
            ckernels_gemm_nt_uses_avx2(), 1, "this test is meant to compare the AVX2 path with the scalar one")
        for (m, n, k) in shapes {
            let x = values(m * k, seed: 4), w = values(n * k, seed: 5), y0 = values(m * n, seed: 6)
            let all = product(x, w, m: m, n: n, k: k, ldx: k, ldw: k, ldy: n, y0: y0, accumulate: true)
            let scalar = product(x, w, m: m, n: n, k: k, ldx: k, ldw: k, ldy: n, y0: y0, accumulate: true, avx2: false)
            XCTAssertEqual(all.map(\.bitPattern), scalar.map(\.bitPattern), "\(m)x\(n)x\(k): AVX2 vs scalar")
            // Each row alone, and each column alone: the same bits as the whole product.
            for r in 0..<m {
                let row = product(
                    Array(x[(r * k)..<((r + 1) * k)]), w, m: 1, n: n, k: k, ldx: k, ldw: k, ldy: n,
                    y0: Array(y0[(r * n)..<((r + 1) * n)]), accumulate: true)
                XCTAssertEqual(
                    row.map(\.bitPattern), all[(r * n)..<((r + 1) * n)].map(\.bitPattern), "\(m)x\(n)x\(k) row \(r)")
            }
            for j in 0..<n {
                let column = product(
                    x, Array(w[(j * k)..<((j + 1) * k)]), m: m, n: 1, k: k, ldx: k, ldw: k, ldy: 1,
                    y0: (0..<m).map { y0[$0 * n + j] }, accumulate: true)
                XCTAssertEqual(
                    column.map(\.bitPattern), (0..<m).map { all[$0 * n + j].bitPattern }, "\(m)x\(n)x\(k) column \(j)")
            }
        }
    }

    func testGemmRoutesFewRowsAndThreadCountChangesNoBit() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        // Wide enough that two threads split the columns.
        let m = 3, n = 900, k = 200
        let x = values(m * k, seed: 7), w = values(n * k, seed: 8), y0 = values(m * n, seed: 9)
        let direct = product(x, w, m: m, n: n, k: k, ldx: k, ldw: k, ldy: n, y0: y0, accumulate: true)
        for threads in [1, 2] {
            Parallel.threads = threads
            var y = y0
            BLAS.gemm(transB: true, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, beta: 1, c: &y, ldc: n)
            XCTAssertEqual(y.map(\.bitPattern), direct.map(\.bitPattern), "BLAS.gemm with \(threads) threads")
        }
    }

    /// Float16 weights (`ckernels_gemm_nt_half`, `BLAS.gemmFewRows(halfB:)`): the bits of the
    /// Float32 product on the converted matrix, on both CPU paths, at 1 and 2 threads; the scalar
    /// conversion agrees with F16C on every one of the 65,536 bit patterns, subnormals included.
    func testFloat16WeightsGiveTheFloat32ProductOfTheConvertedMatrix() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (m, n, k) in shapes + [(3, 900, 200)] {
            let ldx = k + 3, ldw = k + 1, ldy = n + 2
            let x = values(m * ldx, seed: 10), y0 = values(m * ldy, seed: 12)
            var halves = [UInt16](repeating: 0, count: n * ldw), w = values(n * ldw, seed: 11)
            // Tiny weights too, so some become Float16 subnormals.
            for i in stride(from: 0, to: w.count, by: 5) { w[i] *= 1e-5 }
            Half.encode(w, &halves, count: w.count)
            Half.decode(halves, &w, count: w.count)
            for accumulate in [false, true] {
                let expected = product(
                    x, w, m: m, n: n, k: k, ldx: ldx, ldw: ldw, ldy: ldy, y0: y0, accumulate: accumulate)
                var avx2 = y0, scalar = y0
                ckernels_gemm_nt_half(
                    x, Int64(m), Int64(ldx), halves, Int64(n), Int64(ldw), Int64(k), &avx2, Int64(ldy),
                    accumulate ? 1 : 0)
                ckernels_gemm_nt_half_scalar(
                    x, Int64(m), Int64(ldx), halves, Int64(n), Int64(ldw), Int64(k), &scalar, Int64(ldy),
                    accumulate ? 1 : 0)
                XCTAssertEqual(avx2.map(\.bitPattern), expected.map(\.bitPattern), "\(m)x\(n)x\(k) AVX2")
                XCTAssertEqual(scalar.map(\.bitPattern), expected.map(\.bitPattern), "\(m)x\(n)x\(k) scalar")
                for threads in [1, 2] {
                    Parallel.threads = threads
                    var y = y0
                    BLAS.gemmFewRows(
                        m: m, n: n, k: k, a: x, lda: ldx, halfB: halves, ldb: ldw, accumulate: accumulate, c: &y,
                        ldc: ldy)
                    XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), "\(m)x\(n)x\(k) \(threads) threads")
                }
            }
        }
        // Every binary16 pattern as the weight of a 1 x 1 x 1 product with x = 1 (0 + 1 * w = w
        // exactly, except that -0 sums to +0): the scalar conversion equals F16C's.
        let all = (0...UInt16.max).map { $0 }
        var converted = [Float](repeating: 0, count: all.count)
        Half.decode(all, &converted, count: all.count)
        for (bits, f16c) in zip(all, converted) {
            var y: Float = 0
            ckernels_gemm_nt_half_scalar([1], 1, 1, [bits], 1, 1, 1, &y, 1, 0)
            if f16c.isNaN {
                XCTAssertTrue(y.isNaN, "\(bits)")
            } else if f16c == 0 {
                XCTAssertEqual(y.bitPattern, Float(0).bitPattern, "\(bits)")
            } else {
                XCTAssertEqual(y.bitPattern, f16c.bitPattern, "\(bits)")
            }
        }
    }
}
