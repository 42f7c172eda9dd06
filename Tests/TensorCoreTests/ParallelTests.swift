import Dispatch
import Foundation
import TensorCore
import XCTest

/// The thread pool behind `Parallel`: every chunk runs exactly once, whatever the thread count,
/// nesting, concurrent callers or parking in between.
final class ParallelTests: XCTestCase {
    private var savedThreads = 1
    private var savedSpin = 0

    override func setUp() {
        savedThreads = Parallel.threads
        savedSpin = Parallel.spinMicroseconds
    }

    override func tearDown() {
        Parallel.threads = savedThreads
        Parallel.spinMicroseconds = savedSpin
    }

    /// Counts how often each index ran; the counters are touched by one chunk each.
    private func runCounts(_ count: Int, _ call: (UnsafeMutablePointer<Int>) -> Void) -> [Int] {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: count)
        call(counts)
        return Array(UnsafeBufferPointer(start: counts, count: count))
    }

    func testForEachRunsEveryIndexOnceAtAnyThreadCount() {
        for threads in [1, 2, 3, 8] {
            Parallel.threads = threads
            for count in [0, 1, 2, 3, 7, 64] {
                let counts = runCounts(count) { c in Parallel.forEach(count) { c[$0] += 1 } }
                XCTAssertEqual(counts, Array(repeating: 1, count: count), "threads \(threads), count \(count)")
            }
        }
    }

    func testRowsCoverTheRangeWithDisjointChunksFixedByCountAndThreads() {
        Parallel.threads = 3
        let count = 1000
        nonisolated(unsafe) var chunks = [Range<Int>](repeating: 0..<0, count: 3)
        let counts = runCounts(count) { c in
            Parallel.rows(count, costPerRow: 1 << 20) { range in
                for i in range { c[i] += 1 }
                chunks[(range.upperBound - 1) * 3 / count] = range
            }
        }
        XCTAssertEqual(counts, Array(repeating: 1, count: count))
        XCTAssertEqual(chunks, [0..<333, 333..<666, 666..<1000])
    }

    func testNestedCallsRunInlineWithoutDeadlock() {
        Parallel.threads = 2
        let counts = runCounts(16) { c in
            Parallel.forEach(4) { outer in
                Parallel.forEach(4) { inner in c[outer * 4 + inner] += 1 }
            }
        }
        XCTAssertEqual(counts, Array(repeating: 1, count: 16))
    }

    func testConcurrentCallersEachGetEveryChunk() {
        Parallel.threads = 2
        let callers = 4, count = 8, rounds = 2000
        let counts = runCounts(callers * count) { c in
            nonisolated(unsafe) let c = c
            DispatchQueue.concurrentPerform(iterations: callers) { caller in
                for _ in 0..<rounds {
                    Parallel.forEach(count) { c[caller * count + $0] += 1 }
                }
            }
        }
        XCTAssertEqual(counts, Array(repeating: rounds, count: callers * count))
    }

    /// With no spinning every call finds the pool parked; the wake-up must never be lost.
    func testCallsAfterThePoolParkedStillComplete() {
        Parallel.threads = 2
        Parallel.spinMicroseconds = 0
        for round in 0..<200 {
            if round % 20 == 0 { usleep(2_000) }
            let counts = runCounts(5) { c in Parallel.forEach(5) { c[$0] += 1 } }
            XCTAssertEqual(counts, [1, 1, 1, 1, 1], "round \(round)")
        }
    }

    /// Decoders raise the spin for their duration only; scopes nest, and the configured value
    /// is never overwritten by them.
    func testLatencyBoundScopeRaisesTheSpinAndRestoresIt() {
        Parallel.spinMicroseconds = 30
        XCTAssertEqual(Parallel.currentSpinMicroseconds, 30)
        Parallel.latencyBound {
            XCTAssertEqual(Parallel.currentSpinMicroseconds, 200)
            Parallel.latencyBound { XCTAssertEqual(Parallel.currentSpinMicroseconds, 200) }
            XCTAssertEqual(Parallel.currentSpinMicroseconds, 200)
            XCTAssertEqual(Parallel.spinMicroseconds, 30)
        }
        XCTAssertEqual(Parallel.currentSpinMicroseconds, 30)
        Parallel.spinMicroseconds = 500
        Parallel.latencyBound { XCTAssertEqual(Parallel.currentSpinMicroseconds, 500) }
        struct Stop: Error {}
        XCTAssertThrowsError(try Parallel.latencyBound { () throws(Stop) in throw Stop() })
        XCTAssertEqual(Parallel.currentSpinMicroseconds, 500)
    }

    func testManyShortCallsBackToBack() {
        Parallel.threads = 2
        let rounds = 50_000
        let counts = runCounts(2) { c in
            for _ in 0..<rounds { Parallel.forEach(2) { c[$0] += 1 } }
        }
        XCTAssertEqual(counts, [rounds, rounds])
    }
}
