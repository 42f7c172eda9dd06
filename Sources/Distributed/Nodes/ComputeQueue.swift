import Dispatch

/// Runs blocking compute (a training step takes seconds) off Swift's cooperative thread pool, so
/// the socket event loops and heartbeats of the same process never starve while it runs.
///
/// One queue per worker, never one per process: the laptop mode's in-process workers
/// (`coordinator --single-process --workers N`) each compute on their own queue, concurrently,
/// as workers in separate processes do. A single shared queue ran them one after the other, at
/// the speed of one worker.
package final class ComputeQueue: Sendable {
    private let queue: DispatchQueue

    package init(label: String) { queue = DispatchQueue(label: label) }

    package func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Hands a value that is not Sendable to the compute queue. Safe where it is used: the owner
/// (an actor) awaits the compute before touching the value again, so there is never concurrent access.
final class Exclusive<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Monotonic seconds.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
