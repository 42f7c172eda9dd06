import CBLAS
import CKernels

/// Thin wrappers over OpenBLAS. Every matrix product in the project goes through `gemm`;
/// transposes are expressed as BLAS flags, never as copies.
package enum BLAS {
    /// Sets the number of OpenBLAS's own threads. The project keeps it at 1 and partitions large
    /// products itself (`gemm`), so that one thread pool (`Parallel`) owns the cores: OpenBLAS's
    /// spinning workers otherwise compete with the elementwise loops for the same cores.
    package static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(Swift.max(1, n))) }
    package static var threads: Int { Int(openblas_get_num_threads()) }

    /// Row-major C[M,N] = alpha * op(A) * op(B) + beta * C.
    /// `transA` means A is stored [K,M]; `transB` means B is stored [N,K].
    ///
    /// With several threads a large product is split by rows of C, at multiples of 12 rows, into
    /// single-threaded sgemm calls run concurrently. OpenBLAS's x86-64 kernels block those rows by
    /// 3 x 4 (Haswell) or 16 x 4 (SkylakeX, within blocks whose starts are multiples of 12 rows),
    /// so such a split gives exactly the bits of the unsplit product (measured on every transpose
    /// combination with the Prescott, Haswell and SkylakeX kernels; splits by columns, or by rows at
    /// other boundaries, do not).
    /// One thread therefore runs the whole product at full speed, and any thread count gives
    /// bit-identical results (`KernelTests` checks 1 vs 2 threads).
    package static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if transB, !transA, alpha == 1, beta == 0 || beta == 1, m <= fewRows {
            gemmFewRows(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1, c: c, ldc: ldc)
            return
        }
        let t = Parallel.threads
        let parts = Swift.min(t, m / 48)
        // Every part must stay above 2^20 multiply-adds: below 10^6 OpenBLAS's SkylakeX build
        // switches to its small-matrix kernels, whose summation order differs from the blocked
        // kernels the unsplit product uses (the split would then change bits).
        guard parts > 1, (m / parts - 12) * n * k >= 1 << 20 else {
            gemmSerial(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        Parallel.forEach(parts) { p in
            let lo = p == 0 ? 0 : (m * p / parts) / 12 * 12
            let hi = p == parts - 1 ? m : (m * (p + 1) / parts) / 12 * 12
            gemmSerial(
                transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                a: transA ? a + lo : a + lo * lda, lda: lda, b: b, ldb: ldb, beta: beta,
                c: c + lo * ldc, ldc: ldc)
        }
    }

    /// Up to this many rows, `gemm` computes C = A B^T (+ C) with `gemmFewRows` instead of sgemm:
    /// decoding's products (one row per sentence or hypothesis), where sgemm's packing of B on
    /// every call costs as much as the product. Training's products have hundreds of rows.
    /// Measured on AMD EPYC (Zen 4), one thread, at the shapes of `base` (N x K = 8000 x 512,
    /// 1536 x 512, 512 x 2048): 2.3-12x sgemm at 1 row, 1.0-1.7x at 32, parity around 48-96.
    package static let fewRows = 48

    /// C[M,N] = A[M,K] B[N,K]^T (+ C when `accumulate`), B read once in place
    /// (`ckernels_gemm_nt`): each element one dot product in a fixed order, so the bits do not
    /// depend on M, on the CPU or on the thread count. Columns are split across `Parallel.threads`.
    package static func gemmFewRows(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, accumulate: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        Parallel.rows(n, costPerRow: 2 * m * k) { cols in
            guard !cols.isEmpty else { return }
            ckernels_gemm_nt(
                a, Int64(m), Int64(lda), b + cols.lowerBound * ldb, Int64(cols.count), Int64(ldb),
                Int64(k), c + cols.lowerBound, Int64(ldc), accumulate ? 1 : 0)
        }
    }

    /// `gemmFewRows` with B stored as IEEE binary16 bits (Float16 parameters), read in place
    /// (`ckernels_gemm_nt_half`): bit-identical to `gemmFewRows` on B converted to Float32, for
    /// half the bytes streamed (decoding one sentence is bound by reading the weights).
    package static func gemmFewRows(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        halfB b: UnsafePointer<UInt16>, ldb: Int, accumulate: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        Parallel.rows(n, costPerRow: 2 * m * k) { cols in
            guard !cols.isEmpty else { return }
            ckernels_gemm_nt_half(
                a, Int64(m), Int64(lda), b + cols.lowerBound * ldb, Int64(cols.count), Int64(ldb),
                Int64(k), c + cols.lowerBound, Int64(ldc), accumulate ? 1 : 0)
        }
    }

    /// One single-threaded sgemm call (used inside already-parallel loops, e.g. per attention head).
    @inline(__always)
    package static func gemmSerial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// x *= alpha
    @inline(__always)
    package static func scale(_ n: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        cblas_sscal(Int32(n), alpha, x, 1)
    }
}
