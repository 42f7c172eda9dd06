import Distributed
import TensorCore
import Training
import XCTest

/// The reduction order is fixed by the step's canonical tree, never by arrival or by the split:
/// the totals below depend on it (values chosen so that another association of the sum gives
/// other bits).
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
        XCTAssertEqual(sum.nodes, [TreeNode(start: 0, count: 2), TreeNode(start: 2, count: 1)])
        out.withUnsafeMutableBufferPointer { sum.total(into: $0.baseAddress!) }
        XCTAssertEqual(
            out.map(\.bitPattern), (0..<2).map { i in ((leaves[0][i] + leaves[1][i]) + leaves[2][i]).bitPattern })
        // Node sums (a rank's sum of 2 micro-batches) sit in the same tree.
        sum.reset()
        let pairs = [zip(leaves[0], leaves[1]).map(+), zip(leaves[2], leaves[3]).map(+)]
        for (i, v) in pairs.enumerated() {
            v.withUnsafeBufferPointer { sum.push($0.baseAddress!, node: TreeNode(start: 2 * i, count: 2)) }
        }
        var nodeSum = [Float](repeating: .nan, count: 2)
        nodeSum.withUnsafeMutableBufferPointer { sum.total(into: $0.baseAddress!) }
        XCTAssertEqual(nodeSum.map(\.bitPattern), want.map(\.bitPattern))
    }

    func testCoverIsTheMaximalAlignedBlocks() {
        func cover(_ r: Range<Int>) -> [String] { TreeNode.cover(r).map(\.description) }
        XCTAssertEqual(cover(0..<6), ["[0, 4)", "[4, 6)"])
        XCTAssertEqual(cover(2..<4), ["[2, 4)"])
        XCTAssertEqual(cover(1..<3), ["[1, 2)", "[2, 3)"])
        XCTAssertEqual(cover(3..<8), ["[3, 4)", "[4, 8)"])
        XCTAssertEqual(cover(5..<12), ["[5, 6)", "[6, 8)", "[8, 12)"])
        XCTAssertEqual(cover(0..<1), ["[0, 1)"])
        XCTAssertEqual(cover(4..<4), [])
    }

    /// Every split of M = 1...10 micro-batches into contiguous runs (all 2^(M-1) of them, as any
    /// worker count or re-plan makes), each run summed by a "worker" as its cover's nodes and
    /// delivered last rank first: the total has the bits of one replica summing all M leaves.
    func testEverySplitGivesTheBitsOfOneReplica() {
        let count = 5
        var rng = SystemRandomNumberGenerator()
        for m in 1...10 {
            // Magnitudes from 1e-3 to 1e8 of both signs: association changes the bits.
            let leafValues: [[Float]] = (0..<m).map { _ in
                (0..<count).map { _ in
                    Float.random(in: -1...1, using: &rng) * pow(10, Float(Int.random(in: -3...8, using: &rng)))
                }
            }
            let one = PairwiseSum(count: count)
            for v in leafValues { v.withUnsafeBufferPointer { one.push($0.baseAddress!) } }
            var want = [Float](repeating: 0, count: count)
            want.withUnsafeMutableBufferPointer { one.total(into: $0.baseAddress!) }
            let reducer = GradientReducer(count: count, bucketElements: 2)
            for cuts in 0..<(1 << (m - 1)) {
                var runs: [Range<Int>] = [], start = 0
                for p in 1..<m where cuts & (1 << (p - 1)) != 0 {
                    runs.append(start..<p)
                    start = p
                }
                runs.append(start..<m)
                reducer.begin(
                    positions: Dictionary(uniqueKeysWithValues: runs.enumerated().map { ($0.offset, $0.element) }))
                for (rank, run) in runs.enumerated().reversed() {
                    let worker = PairwiseSum(count: count)
                    worker.reset(startingAt: run.lowerBound)
                    for p in run { leafValues[p].withUnsafeBufferPointer { worker.push($0.baseAddress!) } }
                    XCTAssertEqual(worker.nodes, TreeNode.cover(run))
                    for (i, node) in worker.nodes.enumerated() {
                        for b in 0..<reducer.bucketCount {
                            let r = reducer.range(ofBucket: b)
                            let receipt = reducer.receive(
                                rank: rank, node: node, bucket: b,
                                values: UnsafeBufferPointer(start: worker.partial(i) + r.lowerBound, count: r.count))
                            XCTAssertEqual(receipt, .taken)
                        }
                    }
                    XCTAssertTrue(
                        reducer.receiveStatistics(rank: rank, LossStatistics(lossSum: 1, tokens: run.count, correct: 0))
                    )
                }
                XCTAssertTrue(reducer.isComplete)
                XCTAssertEqual(
                    Array(reducer.total.buffer).map(\.bitPattern), want.map(\.bitPattern), "M \(m), runs \(runs)")
                XCTAssertEqual(reducer.statistics.tokens, m)
            }
        }
    }

    /// 4 ranks x 3 buckets, delivered in several orders (later ranks first, buckets interleaved):
    /// the total is always the balanced tree over ranks 0..3, and a re-planned step does not take
    /// the stashed buckets of the attempt before.
    func testArrivalOrderDoesNotChangeTheTotal() {
        let count = 6, bucket = 2
        let values: [[Float]] = (0..<4).map { r in (0..<count).map { i in leaves[r][i % 2] * Float(1 + i / 2) } }
        let want = (0..<count).map { i in ((values[0][i] + values[1][i]) + (values[2][i] + values[3][i])).bitPattern }
        let orders: [[(rank: Int, bucket: Int)]] = [
            (0..<4).flatMap { r in (0..<3).map { (r, $0) } },
            (0..<4).reversed().flatMap { r in (0..<3).reversed().map { (r, $0) } },
            [(2, 1), (3, 0), (1, 2), (0, 1), (3, 1), (1, 0), (2, 2), (0, 0), (1, 1), (3, 2), (2, 0), (0, 2)],
        ]
        let oneEach: [Int: Range<Int>] = [0: 0..<1, 1: 1..<2, 2: 2..<3, 3: 3..<4]
        func send(_ reducer: GradientReducer, _ v: [[Float]], rank r: Int, bucket b: Int, node: TreeNode)
            -> GradientReducer.Receipt
        {
            Array(v[r][(b * bucket)..<((b + 1) * bucket)]).withUnsafeBufferPointer {
                reducer.receive(rank: r, node: node, bucket: b, values: $0)
            }
        }
        let reducer = GradientReducer(count: count, bucketElements: bucket)
        for order in orders {
            reducer.begin(positions: oneEach)
            for (r, b) in order {
                XCTAssertFalse(reducer.isComplete)
                XCTAssertEqual(send(reducer, values, rank: r, bucket: b, node: TreeNode(start: r, count: 1)), .taken)
            }
            for r in 0..<4 {
                XCTAssertTrue(reducer.receiveStatistics(rank: r, LossStatistics(lossSum: 1, tokens: 2, correct: 1)))
            }
            XCTAssertTrue(reducer.isComplete)
            XCTAssertEqual(Array(reducer.total.buffer).map(\.bitPattern), want, "order \(order)")
            XCTAssertEqual(reducer.statistics.tokens, 8)
        }
        // A step re-planned while rank 3's buckets wait in the stash: the new attempt must not
        // count them (its own rank 3 delivers again, scaled by 2 to tell them apart).
        reducer.begin(positions: oneEach)
        for b in 0..<3 { _ = send(reducer, values, rank: 3, bucket: b, node: TreeNode(start: 3, count: 1)) }
        reducer.begin(positions: oneEach)
        var doubled = values
        doubled[3] = values[3].map { $0 * 2 }
        for r in [3, 2, 1, 0] {
            for b in 0..<3 { _ = send(reducer, doubled, rank: r, bucket: b, node: TreeNode(start: r, count: 1)) }
        }
        var replanned: [UInt32] = []
        for i in 0..<count {
            let left: Float = doubled[0][i] + doubled[1][i]
            let right: Float = doubled[2][i] + doubled[3][i]
            replanned.append((left + right).bitPattern)
        }
        XCTAssertEqual(
            Array(reducer.total.buffer).map(\.bitPattern), replanned,
            "the first attempt's stashed buckets leaked into the re-planned step")
        // Next step: ranks 1 and 3 only, two leaves each, rank 3 first.
        reducer.begin(positions: [1: 0..<2, 3: 2..<4])
        for b in 0..<3 {
            XCTAssertEqual(send(reducer, values, rank: 3, bucket: b, node: TreeNode(start: 2, count: 2)), .taken)
            XCTAssertEqual(send(reducer, values, rank: 1, bucket: b, node: TreeNode(start: 0, count: 2)), .taken)
        }
        XCTAssertEqual(reducer.missingRanks, [1, 3], "statistics still missing")
        XCTAssertEqual(
            Array(reducer.total.buffer).map(\.bitPattern),
            (0..<count).map { (values[1][$0] + values[3][$0]).bitPattern })
    }

    /// What a broken or hostile peer sends is refused before a value is read: a short bucket, a
    /// bucket outside the arena, a rank without a part, a node it does not owe, a second copy of a
    /// bucket (which would otherwise overwrite a stashed one), statistics before the rank's buckets.
    func testMalformedContributionsAreIgnored() {
        let reducer = GradientReducer(count: 5, bucketElements: 2)  // buckets of 2, 2, 1 values
        reducer.begin(positions: [0: 0..<1, 1: 1..<2])
        let n0 = TreeNode(start: 0, count: 1), n1 = TreeNode(start: 1, count: 1)
        let two: [Float] = [1, 2], one: [Float] = [3]
        two.withUnsafeBufferPointer { p in
            XCTAssertEqual(
                reducer.receive(rank: 0, node: n0, bucket: 2, values: p), .unexpected, "2 values for a bucket of 1")
            XCTAssertEqual(reducer.receive(rank: 0, node: n0, bucket: 3, values: p), .unexpected, "no bucket 3")
            XCTAssertEqual(reducer.receive(rank: 0, node: n0, bucket: -1, values: p), .unexpected)
            XCTAssertEqual(reducer.receive(rank: 7, node: n0, bucket: 0, values: p), .unexpected, "rank 7 has no part")
            XCTAssertEqual(reducer.receive(rank: 0, node: n1, bucket: 0, values: p), .unexpected, "node of rank 1")
            XCTAssertEqual(
                reducer.receive(rank: 0, node: TreeNode(start: 0, count: 2), bucket: 0, values: p), .unexpected)
        }
        one.withUnsafeBufferPointer { p in
            XCTAssertEqual(
                reducer.receive(rank: 0, node: n0, bucket: 0, values: p), .unexpected, "1 value for a bucket of 2")
        }
        XCTAssertFalse(
            reducer.receiveStatistics(rank: 0, LossStatistics(lossSum: 1, tokens: 1, correct: 0)),
            "statistics before any bucket")
        // Rank 1 stashes bucket 0 (rank 0's is not in yet); a second copy must not replace it.
        let first: [Float] = [10, 20], second: [Float] = [-1, -1]
        first.withUnsafeBufferPointer {
            XCTAssertEqual(reducer.receive(rank: 1, node: n1, bucket: 0, values: $0), .taken)
        }
        second.withUnsafeBufferPointer {
            XCTAssertEqual(reducer.receive(rank: 1, node: n1, bucket: 0, values: $0), .duplicate)
        }
        let r0: [[Float]] = [[1, 2], [3, 4], [5]], r1: [[Float]] = [[10, 20], [30, 40], [50]]
        for b in 0..<3 {
            r0[b].withUnsafeBufferPointer {
                XCTAssertEqual(reducer.receive(rank: 0, node: n0, bucket: b, values: $0), .taken)
            }
        }
        for b in 1..<3 {
            r1[b].withUnsafeBufferPointer {
                XCTAssertEqual(reducer.receive(rank: 1, node: n1, bucket: b, values: $0), .taken)
            }
        }
        for r in 0..<2 {
            XCTAssertTrue(reducer.receiveStatistics(rank: r, LossStatistics(lossSum: 1, tokens: 2, correct: 1)))
        }
        XCTAssertFalse(
            reducer.receiveStatistics(rank: 1, LossStatistics(lossSum: 9, tokens: 9, correct: 9)), "second copy")
        XCTAssertTrue(reducer.isComplete)
        XCTAssertEqual(Array(reducer.total.buffer), [11, 22, 33, 44, 55])
        XCTAssertEqual(reducer.statistics.tokens, 4)
    }
}
