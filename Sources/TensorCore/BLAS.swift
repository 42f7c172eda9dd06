import CBLAS

/// Thin wrappers over OpenBLAS. Every matrix product in the project goes through `gemm`;
/// transposes are expressed as BLAS flags, never as copies.
public enum BLAS {
    /// Sets the number of OpenBLAS's own threads. The project keeps it at 1 and partitions large
    /// products itself (`gemm`), so that one thread pool (`Parallel`) owns the cores: OpenBLAS's
    /// spinning workers otherwise compete with the elementwise loops for the same cores.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(Swift.max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Row-major C[M,N] = alpha * op(A) * op(B) + beta * C.
    /// `transA` means A is stored [K,M]; `transB` means B is stored [N,K].
    ///
    /// A large product is always computed as the same two halves (by rows of C when M >= N, else by
    /// columns), each an independent single-threaded sgemm, run concurrently when the process has
    /// two or more threads. The split depends only on the shape, so results are bit-identical
    /// whatever the thread count (OpenBLAS's own blocking depends on where a split falls).
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let splitRows = m >= n
        let extent = splitRows ? m : n
        guard m * n * k >= 1 << 20, extent >= 64 else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let half = (extent / 2 + 15) & ~15   // 16-aligned so each half keeps full kernel tiles
        let body: (Int) -> Void = { p in
            let lo = p == 0 ? 0 : half, hi = p == 0 ? half : extent
            if splitRows {
                gemmSerial(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                           a: transA ? a + lo : a + lo * lda, lda: lda, b: b, ldb: ldb, beta: beta,
                           c: c + lo * ldc, ldc: ldc)
            } else {
                gemmSerial(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                           b: transB ? b + lo * ldb : b + lo, ldb: ldb, beta: beta, c: c + lo, ldc: ldc)
            }
        }
        if Parallel.threads > 1 { Parallel.forEach(2, body) } else { body(0); body(1) }
    }

    /// One single-threaded sgemm call (used inside already-parallel loops, e.g. per attention head).
    @inline(__always)
    public static func gemmSerial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y += alpha * x
    @inline(__always)
    public static func axpy(_ n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }

    /// x *= alpha
    @inline(__always)
    public static func scale(_ n: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        cblas_sscal(Int32(n), alpha, x, 1)
    }
}
