import XCTest
import TensorCore
import Training
import Distributed

/// The reduction order is fixed by rank and tree shape, never by arrival: the totals below depend
/// on it (values chosen so that a different association of the sum gives different bits).
final class GradientReducerTests: XCTestCase {
    /// Float sums whose association matters: (a + b) + (c + d) differs from ((a + b) + c) + d.
    let leaves: [[Float]] = [[1e8, 3], [1, 0.5], [-1e8, 7], [1, 1e-3]]

    func testPairwiseSumUsesTheBalancedTree() {
        let sum = PairwiseSum(count: 2)
        for v in leaves { v.withUnsafeBufferPointer { sum.push($0.baseAddress!) } }
        var out = [Float](repeating: .nan, count: 2)
        out.withUnsafeMutableBufferPointer { sum.total(into: $0.baseAddress!) }
        let want = (0..<2).map { i in (leaves[0][i] + leaves[1][i]) + (leaves[2][i] + leaves[3][i]) }
        XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern))
        XCTAssertEqual(out[0], 0, "(1e8 + 1) + (-1e8 + 1) rounds 1e8 + 1 to 1e8")
        XCTAssertEqual(sum.leafCount, 4)
        // Three leaves: the odd one is folded in last; reset reuses the buffers.
        sum.reset()
        for v in leaves.prefix(3) { v.withUnsafeBufferPointer { sum.push($0.baseAddress!) } }
        out.withUnsafeMutableBufferPointer { sum.total(into: $0.baseAddress!) }
        XCTAssertEqual(out.map(\.bitPattern), (0..<2).map { i in ((leaves[0][i] + leaves[1][i]) + leaves[2][i]).bitPattern })
        // Weighted pushes (a rank's partial sum of 2 micro-batches) sit in the same tree.
        sum.reset()
        let pairs = [zip(leaves[0], leaves[1]).map(+), zip(leaves[2], leaves[3]).map(+)]
        for v in pairs { v.withUnsafeBufferPointer { sum.push($0.baseAddress!, weight: 2) } }
        var weighted = [Float](repeating: .nan, count: 2)
        weighted.withUnsafeMutableBufferPointer { sum.total(into: $0.baseAddress!) }
        XCTAssertEqual(weighted.map(\.bitPattern), want.map(\.bitPattern))
    }

    /// 4 ranks x 3 buckets, delivered in several orders (later ranks first, buckets interleaved):
    /// the total is always the balanced tree over ranks 0..3, and a step later (with a rank gone)
    /// the stashed buffers of the previous step do not leak into the sum.
    func testArrivalOrderDoesNotChangeTheTotal() {
        let count = 6, bucket = 2
        let values: [[Float]] = (0..<4).map { r in (0..<count).map { i in leaves[r][i % 2] * Float(1 + i / 2) } }
        let want = (0..<count).map { i in ((values[0][i] + values[1][i]) + (values[2][i] + values[3][i])).bitPattern }
        let orders: [[(rank: Int, bucket: Int)]] = [
            (0..<4).flatMap { r in (0..<3).map { (r, $0) } },
            (0..<4).reversed().flatMap { r in (0..<3).reversed().map { (r, $0) } },
            [(2, 1), (3, 0), (1, 2), (0, 1), (3, 1), (1, 0), (2, 2), (0, 0), (1, 1), (3, 2), (2, 0), (0, 2)],
        ]
        let reducer = GradientReducer(count: count, bucketElements: bucket)
        for order in orders {
            reducer.begin(microBatches: [0: 1, 1: 1, 2: 1, 3: 1])
            for (r, b) in order {
                XCTAssertFalse(reducer.isComplete)
                let part = Array(values[r][(b * bucket)..<((b + 1) * bucket)])
                part.withUnsafeBufferPointer { reducer.receive(rank: r, bucket: b, values: $0.baseAddress!) }
            }
            for r in 0..<4 { reducer.receiveStatistics(rank: r, LossStatistics(lossSum: 1, tokens: 2, correct: 1)) }
            XCTAssertTrue(reducer.isComplete)
            XCTAssertEqual(Array(reducer.total.buffer).map(\.bitPattern), want, "order \(order)")
            XCTAssertEqual(reducer.statistics.tokens, 8)
        }
        // A step re-planned while rank 3's buckets wait in the stash: the new attempt must not
        // count them (its own rank 3 delivers again, scaled by 2 to tell them apart).
        reducer.begin(microBatches: [0: 1, 1: 1, 2: 1, 3: 1])
        for b in 0..<3 {
            let part = Array(values[3][(b * bucket)..<((b + 1) * bucket)])
            part.withUnsafeBufferPointer { reducer.receive(rank: 3, bucket: b, values: $0.baseAddress!) }
        }
        reducer.begin(microBatches: [0: 1, 1: 1, 2: 1, 3: 1])
        var doubled = values
        doubled[3] = values[3].map { $0 * 2 }
        for r in [3, 2, 1, 0] {
            for b in 0..<3 {
                let part = Array(doubled[r][(b * bucket)..<((b + 1) * bucket)])
                part.withUnsafeBufferPointer { reducer.receive(rank: r, bucket: b, values: $0.baseAddress!) }
            }
        }
        var replanned: [UInt32] = []
        for i in 0..<count {
            let left: Float = doubled[0][i] + doubled[1][i]
            let right: Float = doubled[2][i] + doubled[3][i]
            replanned.append((left + right).bitPattern)
        }
        XCTAssertEqual(Array(reducer.total.buffer).map(\.bitPattern), replanned,
                       "the first attempt's stashed buckets leaked into the re-planned step")
        // Next step: ranks 1 and 3 only, rank 3 first.
        reducer.begin(microBatches: [1: 2, 3: 2])
        for b in 0..<3 {
            for r in [3, 1] {
                let part = Array(values[r][(b * bucket)..<((b + 1) * bucket)])
                part.withUnsafeBufferPointer { reducer.receive(rank: r, bucket: b, values: $0.baseAddress!) }
            }
        }
        XCTAssertEqual(reducer.missingRanks, [1, 3], "statistics still missing")
        XCTAssertEqual(Array(reducer.total.buffer).map(\.bitPattern), (0..<count).map { (values[1][$0] + values[3][$0]).bitPattern })
    }
}
