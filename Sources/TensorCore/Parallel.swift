import Dispatch

/// Splits row loops across the process's compute threads.
///
/// The thread budget is set once per process (`Parallel.threads`), the same number given to
/// OpenBLAS, so a rank never uses more cores than it was granted.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1

    /// Threads used by `rows`; also applied to OpenBLAS.
    public static var threads: Int {
        get { _threads }
        set { _threads = Swift.max(1, newValue); BLAS.setThreads(_threads) }
    }

    /// Calls `body(range)` over disjoint chunks of `0..<count`, in parallel when the work
    /// (`count * costPerRow`, roughly in floating point operations) is large enough to pay for it.
    @inline(__always)
    public static func rows(_ count: Int, costPerRow: Int = 1, _ body: (Range<Int>) -> Void) {
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
