import TensorCore
import Training

/// Sums the workers' gradient buckets into one buffer while buckets arrive, in the step's
/// canonical tree (`TreeNode`, `PairwiseSum`).
///
/// Each rank sends one sum per tree node covering its run of the step's micro-batches (one node
/// when the run is aligned). Per bucket, the nodes of all ranks are pushed in position order into
/// the tree a single worker would build over all the micro-batches, so the total has the same bits
/// for any worker count and any re-plan. A node that arrives before its turn is stashed (buffers
/// kept from step to step: no allocation in steady state) and taken as soon as the nodes before it
/// are in, so most of the reduction still overlaps reception.
///
/// Workers send each bucket as soon as their backward has finished it (`GradientStream`: the last
/// buckets first, bucket 0 with the shared embedding at the end), so reduction overlaps the
/// workers' backward too. The optimizer cannot start per bucket without changing bits, and so
/// waits for the whole total (`TrainingSession.applyStep` -> `OptimizerStep.apply`): (1) it first
/// scales the whole gradient by 1 / (global tokens x multiplier), and the global token count is
/// the sum of every rank's statistics, which each rank sends after its last bucket; (2) the
/// global norm is then taken over the SCALED values (`GradientClipping.globalNorm`: Double sums
/// of squares per 64 Ki-value block, added in block order), and the norm of unscaled values
/// times the scale is not the same number in floating point; (3) AdamW reads the clipped values
/// (coefficient from the global norm over all buckets), and a step with a non-finite loss or norm
/// must leave weights and moments untouched. Blocks do align with buckets (1 Mi values = 16
/// blocks), so the per-block squared sums could be taken per bucket as its total completes,
/// with the same bits, if the coordinator knew the step's token count before the last rank's
/// statistics (e.g. counted from the data, which it holds): that needs an `OptimizerStep` entry
/// point taking precomputed block sums, and saves at most the norm's pass over the arena (a
/// part of `apply_seconds` in `metrics.jsonl`).
package final class GradientReducer {
    /// What became of a received bucket.
    package enum Receipt: Equatable, Sendable {
        case taken
        /// A second copy of a bucket already received: ignored.
        case duplicate
        /// Not a part of this step (wrong rank, node, bucket or size): nothing was read.
        case unexpected
    }

    package let total: FloatBuffer
    package let count: Int
    package let bucketElements: Int
    package var bucketCount: Int { (count + bucketElements - 1) / bucketElements }
    private var ranks: [Int] = []
    /// The step's nodes in position order, with the rank that sends each.
    private var sequence: [(rank: Int, node: TreeNode)] = []
    private var sequenceIndex: [Int: [TreeNode: Int]] = [:]  // rank -> node -> index in `sequence`
    /// Per bucket: index into `sequence` of the next node to push.
    private var next: [Int] = []
    private var trees: [PairwiseSum] = []
    /// Nodes that arrived before their turn, at their bucket's place in an arena-sized buffer per
    /// node; buffers go back to the pool at the next step.
    private var stashBuffers: [Int: FloatBuffer] = [:]
    private var stashPool: [FloatBuffer] = []
    private var stashed: [Set<Int>] = []  // bucket -> sequence indices stashed
    /// Per sequence index: buckets received (taken or stashed).
    private var received: [Set<Int>] = []
    private var pendingStats: [Int: LossStatistics] = [:]
    /// The ranks' statistics summed in rank order, once all are in.
    package private(set) var statistics = LossStatistics.zero

    package init(count: Int, bucketElements: Int) {
        self.count = count
        self.bucketElements = bucketElements
        total = FloatBuffer(count: count)
        trees = (0..<((count + bucketElements - 1) / bucketElements)).map { b in
            PairwiseSum(count: Swift.min(count, (b + 1) * bucketElements) - b * bucketElements)
        }
    }

    /// Starts a step: `positions[rank]` is the run of the step's micro-batch positions that rank
    /// sums (runs of different ranks do not overlap; together they are 0..<M).
    package func begin(positions: [Int: Range<Int>]) {
        ranks = positions.keys.sorted()
        let ordered = positions.filter { !$0.value.isEmpty }.sorted { $0.value.lowerBound < $1.value.lowerBound }
        sequence = ordered.flatMap { rank, run in TreeNode.cover(run).map { (rank, $0) } }
        sequenceIndex = [:]
        for (i, part) in sequence.enumerated() { sequenceIndex[part.rank, default: [:]][part.node] = i }
        next = [Int](repeating: 0, count: bucketCount)
        for t in trees { t.reset(startingAt: sequence.first?.node.start ?? 0) }
        stashPool.append(contentsOf: stashBuffers.values)
        stashBuffers.removeAll()
        stashed = [Set<Int>](repeating: [], count: bucketCount)
        received = [Set<Int>](repeating: [], count: sequence.count)
        pendingStats.removeAll()
        statistics = .zero
    }

    /// The nodes `rank` sends this step, in order (empty if it has no part).
    package func nodes(of rank: Int) -> [TreeNode] {
        sequence.filter { $0.rank == rank }.map(\.node)
    }

    /// True if `rank` has a part in the current step.
    package func expects(rank: Int) -> Bool { sequenceIndex[rank] != nil }

    package func range(ofBucket b: Int) -> Range<Int> {
        (b * bucketElements)..<Swift.min(count, (b + 1) * bucketElements)
    }

    /// Takes (or stashes) the values of bucket `b` of `rank`'s sum of `node`. Reads nothing unless
    /// `values` holds exactly `range(ofBucket: b).count` floats of a node that rank owes.
    @discardableResult
    package func receive(rank: Int, node: TreeNode, bucket b: Int, values: UnsafeBufferPointer<Float>) -> Receipt {
        guard b >= 0, b < bucketCount, let i = sequenceIndex[rank]?[node],
            values.count == range(ofBucket: b).count, let values = values.baseAddress
        else { return .unexpected }
        guard received[i].insert(b).inserted else { return .duplicate }
        let offset = range(ofBucket: b).lowerBound
        if next[b] == i {
            take(values, index: i, bucket: b)
            while next[b] < sequence.count, stashed[b].remove(next[b]) != nil, let buffer = stashBuffers[next[b]] {
                take(buffer.pointer + offset, index: next[b], bucket: b)
            }
        } else {
            let buffer = stashBuffers[i] ?? stashPool.popLast() ?? FloatBuffer(count: count)
            stashBuffers[i] = buffer
            (buffer.pointer + offset).update(from: values, count: range(ofBucket: b).count)
            stashed[b].insert(i)
        }
        return .taken
    }

    private func take(_ values: UnsafePointer<Float>, index i: Int, bucket b: Int) {
        trees[b].push(values, node: sequence[i].node)
        next[b] += 1
        if next[b] == sequence.count { trees[b].total(into: total.pointer + range(ofBucket: b).lowerBound) }
    }

    /// True once every bucket of every node of `rank` is in.
    private func hasAllBuckets(of rank: Int) -> Bool {
        guard let indices = sequenceIndex[rank]?.values else { return false }
        return indices.allSatisfy { received[$0].count == bucketCount }
    }

    /// Records a rank's loss statistics for the step, which a worker sends after all its buckets.
    /// Returns false (ignored) for a rank without a part in the step, a second copy, or statistics
    /// that come before every bucket of the rank.
    @discardableResult
    package func receiveStatistics(rank: Int, _ s: LossStatistics) -> Bool {
        guard sequenceIndex[rank] != nil, pendingStats[rank] == nil, hasAllBuckets(of: rank) else { return false }
        pendingStats[rank] = s
        let contributing = ranks.filter { sequenceIndex[$0] != nil }
        if pendingStats.count == contributing.count {
            statistics = contributing.reduce(LossStatistics.zero) { $0 + (pendingStats[$1] ?? .zero) }
        }
        return true
    }

    /// True when every bucket and the statistics of every rank are in.
    package var isComplete: Bool {
        pendingStats.count == ranks.filter({ sequenceIndex[$0] != nil }).count
            && next.allSatisfy { $0 == sequence.count }
    }

    /// Ranks whose contribution is still missing (for deadline messages).
    package var missingRanks: [Int] {
        ranks.filter { sequenceIndex[$0] != nil && (pendingStats[$0] == nil || !hasAllBuckets(of: $0)) }
    }
}
