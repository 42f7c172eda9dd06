import CKernels

/// Splits row loops across the process's compute threads.
///
/// The thread budget is set once per process (`Parallel.threads`), the same number given to
/// OpenBLAS, so a rank never uses more cores than it was granted. The work runs on a persistent
/// pool (`ckernels_pool_run`): its threads spin for a short while after each call before parking,
/// so the ~40 short products of a decoding step do not each pay for waking a parked thread.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1

    /// The most threads the pool runs (`ckernels_pool_max_threads`); a larger budget is clamped
    /// to it.
    public static let maxThreads = Int(ckernels_pool_max_threads())

    /// The process's compute-thread budget, used by `rows`, `forEach` and `BLAS.gemm`, between 1
    /// and `maxThreads`. OpenBLAS itself is kept single-threaded (see `BLAS.setThreads`).
    public static var threads: Int {
        get { _threads }
        set {
            _threads = Swift.min(Swift.max(1, newValue), maxThreads)
            BLAS.setThreads(1)
        }
    }

    /// How long an idle pool thread spins, waiting for the next call, before it parks (and how
    /// long a caller spins for the last chunk). Spinning keeps back-to-back calls cheap; parking
    /// keeps an idle process off the cores. Default 50 us, or `TRANSFORMER_POOL_SPIN_US` if set;
    /// inside `latencyBound` at least 200 us.
    public static var spinMicroseconds: Int {
        get { ckernels_pool_spin_microseconds() }
        set { ckernels_pool_set_spin_microseconds(Swift.max(0, newValue)) }
    }

    /// The spin in effect now: `spinMicroseconds`, raised inside `latencyBound`.
    package static var currentSpinMicroseconds: Int { ckernels_pool_current_spin_microseconds() }

    /// Runs `body` with the pool's threads spinning at least 200 us between calls. Decoding makes
    /// ~40 products of 0.1-0.3 ms per step with serial work between them, and a thread that parked
    /// in such a gap costs a wake-up per product; training's calls are long, and a long spin there
    /// measured slower steps, so only decoders open this scope.
    package static func latencyBound<Result, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        ckernels_pool_begin_latency_bound()
        defer { ckernels_pool_end_latency_bound() }
        return try body()
    }

    /// Runs `body(i)` for i in 0..<count, concurrently on up to `threads` threads (count is
    /// small: about one part per thread). A call from inside another call's body runs inline.
    package static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || _threads <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        run(count, body)
    }

    /// Calls `body(range)` over disjoint chunks of `0..<count`, in parallel when the work
    /// (`count * costPerRow`, roughly in floating point operations) is large enough to pay for it.
    /// The chunks depend on `count` and `threads` only, never on which thread runs them.
    @inline(__always)
    package static func rows(_ count: Int, costPerRow: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = _threads
        if t <= 1 || count < 2 || count * costPerRow < 32_768 {
            body(0..<count)
            return
        }
        let chunks = Swift.min(t, count)
        run(chunks) { c in body(count * c / chunks..<count * (c + 1) / chunks) }
    }

    /// Hands `body` to the pool. The pool returns only after every chunk has run, so the closure
    /// never outlives this call; chunks are disjoint by the callers' construction.
    private static func run(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var job = body
            withUnsafeMutablePointer(to: &job) { pointer in
                ckernels_pool_run(
                    Int32(_threads), Int32(count),
                    { context, index in
                        context.unsafelyUnwrapped.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(index))
                    }, pointer)
            }
        }
    }
}
