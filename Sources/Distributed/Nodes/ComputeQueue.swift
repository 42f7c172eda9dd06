import Dispatch

/// Runs blocking compute (a training step takes seconds) off Swift's cooperative thread pool, so
/// the socket event loops and heartbeats of the same process never starve while it runs.
enum ComputeQueue {
    private static let queue = DispatchQueue(label: "swift-transformer.compute")

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
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
