import Dispatch

/// Splits row loops across the process's compute threads.
///
/// The thread budget is set once per process (`Parallel.threads`), the same number given to
/// OpenBLAS, so a rank never uses more cores than it was granted.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1

    /// The process's compute-thread budget, used by `rows`, `forEach` and `BLAS.gemm`.
    /// OpenBLAS itself is kept single-threaded (see `BLAS.setThreads`).
    public static var threads: Int {
        get { _threads }
        set {
            _threads = Swift.max(1, newValue)
            BLAS.setThreads(1)
        }
    }

    /// Runs `body(i)` for i in 0..<count, concurrently (count is small: one part per thread).
    package static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: count) { body($0) }
        }
    }

    /// Calls `body(range)` over disjoint chunks of `0..<count`, in parallel when the work
    /// (`count * costPerRow`, roughly in floating point operations) is large enough to pay for it.
    @inline(__always)
    package static func rows(_ count: Int, costPerRow: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = _threads
        if t <= 1 || count < 2 || count * costPerRow < 32_768 {
            body(0..<count)
            return
        }
        let chunks = Swift.min(t, count)
        withoutActuallyEscaping(body) { body in
            // The chunks are disjoint and concurrentPerform returns only after all of them: the
            // closure never outlives this call, so sharing it is safe.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks, hi = count * (c + 1) / chunks
                body(lo..<hi)
            }
        }
    }
}
