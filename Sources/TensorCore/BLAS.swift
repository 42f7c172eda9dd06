import CBLAS

/// Thin wrappers over OpenBLAS. Every matrix product in the project goes through `gemm`;
/// transposes are expressed as BLAS flags, never as copies.
public enum BLAS {
    /// Sets the number of OpenBLAS's own threads. The project keeps it at 1 and partitions large
    /// products itself (`gemm`), so that one thread pool (`Parallel`) owns the cores: OpenBLAS's
    /// spinning workers otherwise compete with the elementwise loops for the same cores.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(Swift.max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Row-major C[M,N] = alpha * op(A) * op(B) + beta * C, split across `Parallel.threads` when the
    /// product is large: by rows of C when M >= N, else by columns. Each part is an independent
    /// single-threaded sgemm, so results do not depend on the thread count.
    /// `transA` means A is stored [K,M]; `transB` means B is stored [N,K].
    public static func gemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let t = Parallel.threads
        guard t > 1, m * n * k >= 1 << 20 else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let splitRows = m >= n
        let extent = splitRows ? m : n
        // Parts aligned to 16 rows/columns so each keeps OpenBLAS's kernel blocking efficient.
        let parts = Swift.min(t, Swift.max(1, extent / 16))
        Parallel.forEach(parts) { p in
            let lo = (extent * p / parts) & ~15, hi = p == parts - 1 ? extent : (extent * (p + 1) / parts) & ~15
            guard hi > lo else { return }
            if splitRows {
                gemmSerial(transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha,
                           a: transA ? a + lo : a + lo * lda, lda: lda, b: b, ldb: ldb, beta: beta,
                           c: c + lo * ldc, ldc: ldc)
            } else {
                gemmSerial(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                           b: transB ? b + lo * ldb : b + lo, ldb: ldb, beta: beta, c: c + lo, ldc: ldc)
            }
        }
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
