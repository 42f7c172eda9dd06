import TensorCore
import XCTest

/// Known answers for the tensor core: matrix products, Float16 conversion, reductions, the row
/// splitter and buffer growth.
final class KernelTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, stream: 1)
        return (0..<count).map { _ in rng.uniform() * 2 - 1 }
    }

    /// C = alpha op(A) op(B) + beta C in Double, the reference for `BLAS.gemm`.
    func referenceGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
        b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int
    ) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let x = transA ? a[p * lda + i] : a[i * lda + p]
                    let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(x) * Double(y)
                }
                out[i * ldc + j] = Float(Double(alpha) * s + Double(beta) * Double(c[i * ldc + j]))
            }
        }
        return out
    }

    func testGemmHandValues() {
        // [[1, 2], [3, 4]] * [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; with A^T: [[26, 30], [38, 44]].
        var c = [Float](repeating: 0, count: 4)
        BLAS.gemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2, c: &c, ldc: 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
        BLAS.gemm(transA: true, m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2, c: &c, ldc: 2)
        XCTAssertEqual(c, [26, 30, 38, 44])
        // alpha 2, beta 1 accumulates onto C: 2 * (A B^T) + C; A B^T = [[17, 23], [39, 53]].
        c = [1, 1, 1, 1]
        BLAS.gemm(
            transB: true, m: 2, n: 2, k: 2, alpha: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2,
            beta: 1, c: &c, ldc: 2)
        XCTAssertEqual(c, [35, 47, 79, 107])
    }

    func testGemmAllTransposesWithLeadingDimensions() {
        let m = 5, n = 4, k = 3
        for transA in [false, true] {
            for transB in [false, true] {
                // Leading dimensions wider than the matrices: BLAS must read and write only the blocks.
                let lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3
                let a = values((transA ? k : m) * lda, seed: 1), b = values((transB ? n : k) * ldb, seed: 2)
                var c = values(m * ldc, seed: 3)
                let expected = referenceGemm(
                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                    b: b, ldb: ldb, beta: 2, c: c, ldc: ldc)
                BLAS.gemm(
                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                    beta: 2, c: &c, ldc: ldc)
                for i in 0..<(m * ldc) {
                    XCTAssertEqual(c[i], expected[i], accuracy: 1e-5, "transA \(transA) transB \(transB) index \(i)")
                }
            }
        }
    }

    func testLargeGemmIsCorrectForEveryThreadCount() {
        // Products above the parallel threshold, both taller than wide (split by rows) and wider than
        // tall (split by columns), every transpose combination, for 1 and 2 threads: each part must
        // read and write the right blocks, so the result matches the Double reference.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (m, n, k) in [(300, 70, 110), (40, 230, 120)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = transA ? m : k, ldb = transB ? k : n
                    let a = values((transA ? k : m) * lda, seed: 4), b = values((transB ? n : k) * ldb, seed: 5)
                    let c0 = values(m * n, seed: 6)
                    let expected = referenceGemm(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a,
                        lda: lda, b: b, ldb: ldb, beta: 1, c: c0, ldc: n)
                    var results: [[Float]] = []
                    for threads in [1, 2] {
                        Parallel.threads = threads
                        var c = c0
                        BLAS.gemm(
                            transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                            beta: 1, c: &c, ldc: n)
                        let worst = zip(c, expected).map { abs($0 - $1) }.max() ?? .nan
                        XCTAssertLessThan(
                            worst, 1e-4, "\(m)x\(n)x\(k) transA \(transA) transB \(transB) threads \(threads)")
                        results.append(c)
                    }
                    // The split is fixed by the shape, so the thread count cannot change a single bit.
                    let differing = zip(results[0], results[1]).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(
                        differing, 0, "gemm \(m)x\(n)x\(k) transA \(transA) transB \(transB): 1 vs 2 threads")
                }
            }
        }
    }

    func testHalfKnownEncodings() {
        // 11 values: one full block of 8 (vector path) and a tail of 3 (scalar path).
        let input: [Float] = [1, -2, 0.5, 65504, 0.1, 70000, 1e-8, 2049, 2051, -0.0, 6.1035156e-05]
        let expected: [UInt16] = [
            0x3C00, 0xC000, 0x3800, 0x7BFF, 0x2E66, 0x7C00, 0x0000, 0x6800, 0x6802, 0x8000, 0x0400,
        ]
        var encoded = [UInt16](repeating: 0xFFFF, count: input.count)
        Half.encode(input, &encoded, count: input.count)
        XCTAssertEqual(encoded, expected)
        var decoded = [Float](repeating: .nan, count: input.count)
        Half.decode(encoded, &decoded, count: input.count)
        // 2049 rounds to even (2048) and 2051 to 2052; 0.1 to the nearest half 0.0999755859375.
        XCTAssertEqual(decoded, [1, -2, 0.5, 65504, 0.0999755859375, .infinity, 0, 2048, 2052, -0.0, 6.1035156e-05])
        XCTAssertEqual(decoded[9].sign, .minus)
    }

    func testVectorOps() {
        let x: [Float] = [1, 2, 3, 4, 5]
        XCTAssertEqual(VectorOps.sumOfSquares(x, count: 5), 55)
        XCTAssertEqual(VectorOps.sumOfSquares(x, count: 3), 14)
        XCTAssertTrue(VectorOps.allFinite(x, count: 5))
        XCTAssertFalse(VectorOps.allFinite([1, 2, 3, 4, .nan], count: 5))
        XCTAssertFalse(VectorOps.allFinite([.infinity, 1], count: 2))
        var y: [Float] = [10, 20, 30]
        VectorOps.add([1, 2, 3], into: &y, count: 3)
        XCTAssertEqual(y, [11, 22, 33])
    }

    func testParallelRowsCoverEveryIndexOnce() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 2
        for count in [0, 1, 2, 3, 1000, 40_001] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                let base = h.baseAddress
                Parallel.rows(count, costPerRow: 64) { range in
                    for i in range { base?[i] += 1 }
                }
            }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "count \(count)")
        }
    }

    func testFloatBufferGrowsAndKeepsContents() {
        let b = FloatBuffer([1, 2, 3])
        XCTAssertEqual(b.array, [1, 2, 3])
        b.resize(2)
        XCTAssertEqual(b.array, [1, 2])
        XCTAssertEqual(b.capacity, 3)
        b.resize(5, zero: true)
        XCTAssertEqual(b.array, [0, 0, 0, 0, 0])
        XCTAssertEqual(Int(bitPattern: b.pointer) % 64, 0, "64-byte aligned")
        b[4] = 7
        XCTAssertEqual(b[4], 7)
    }
}
