import TensorCore
import Training

/// Sums the workers' gradient buckets into one buffer while buckets arrive.
///
/// The order of additions never depends on arrival order: per bucket, the ranks' partial sums are
/// taken in rank order and combined in the same pairwise tree a single worker uses over its
/// micro-batches (`PairwiseSum`, each rank weighted by the number of micro-batches it summed). With
/// power-of-two splits of a step's micro-batches, any worker count gives bit-identical totals. A
/// bucket that arrives before its turn is stashed and taken as soon as the ranks before it are in,
/// so most of the reduction still overlaps reception.
public final class GradientReducer {
    public let total: FloatBuffer
    public let count: Int
    public let bucketElements: Int
    public var bucketCount: Int { (count + bucketElements - 1) / bucketElements }
    private var ranks: [Int] = []
    private var weights: [Int: Int] = [:]
    /// Per bucket: index into `ranks` of the next rank whose contribution may be taken.
    private var next: [Int] = []
    private var trees: [PairwiseSum] = []
    /// Buckets that arrived before their turn, per rank, at their place in an arena-sized buffer
    /// per rank (allocated once: no allocation per step).
    private var stashBuffers: [Int: FloatBuffer] = [:]
    private var stashed: [Set<Int>] = []              // bucket -> ranks stashed
    private var bucketsReceived: [Int: Int] = [:]     // rank -> buckets received (taken or stashed)
    private var pendingStats: [Int: LossStatistics] = [:]
    /// The ranks' statistics summed in rank order, once all are in.
    public private(set) var statistics = LossStatistics.zero

    public init(count: Int, bucketElements: Int) {
        self.count = count
        self.bucketElements = bucketElements
        total = FloatBuffer(count: count)
        trees = (0..<((count + bucketElements - 1) / bucketElements)).map { b in
            PairwiseSum(count: Swift.min(count, (b + 1) * bucketElements) - b * bucketElements)
        }
    }

    /// Starts a step: `microBatches[rank]` is how many micro-batches that rank sums (its tree weight).
    public func begin(microBatches: [Int: Int]) {
        ranks = microBatches.keys.sorted()
        weights = microBatches
        next = [Int](repeating: 0, count: bucketCount)
        for t in trees { t.reset() }
        stashed = [Set<Int>](repeating: [], count: bucketCount)
        for rank in stashBuffers.keys where microBatches[rank] == nil { stashBuffers[rank] = nil }   // a lost worker's
        bucketsReceived.removeAll()
        pendingStats.removeAll()
        statistics = .zero
    }

    public func range(ofBucket b: Int) -> Range<Int> { (b * bucketElements)..<Swift.min(count, (b + 1) * bucketElements) }

    /// Takes (or stashes) rank `rank`'s values for bucket `b` (`range(ofBucket:).count` floats).
    public func receive(rank: Int, bucket b: Int, values: UnsafePointer<Float>) {
        guard b >= 0, b < bucketCount, weights[rank] != nil, next[b] < ranks.count else { return }
        bucketsReceived[rank, default: 0] += 1
        let offset = range(ofBucket: b).lowerBound
        if ranks[next[b]] == rank {
            take(values, rank: rank, bucket: b)
            while next[b] < ranks.count, stashed[b].remove(ranks[next[b]]) != nil, let buffer = stashBuffers[ranks[next[b]]] {
                take(buffer.pointer + offset, rank: ranks[next[b]], bucket: b)
            }
        } else {
            let buffer = stashBuffers[rank] ?? FloatBuffer(count: count)
            stashBuffers[rank] = buffer
            (buffer.pointer + offset).update(from: values, count: range(ofBucket: b).count)
            stashed[b].insert(rank)
        }
    }

    private func take(_ values: UnsafePointer<Float>, rank: Int, bucket b: Int) {
        trees[b].push(values, weight: weights[rank] ?? 1)
        next[b] += 1
        if next[b] == ranks.count { trees[b].total(into: total.pointer + range(ofBucket: b).lowerBound) }
    }

    /// Records a rank's loss statistics for the step.
    public func receiveStatistics(rank: Int, _ s: LossStatistics) {
        guard weights[rank] != nil, pendingStats[rank] == nil else { return }
        pendingStats[rank] = s
        if pendingStats.count == ranks.count {
            statistics = ranks.reduce(LossStatistics.zero) { $0 + (pendingStats[$1] ?? .zero) }
        }
    }

    /// True when every bucket and the statistics of every rank are in.
    public var isComplete: Bool {
        pendingStats.count == ranks.count && next.allSatisfy { $0 == ranks.count }
    }

    /// Ranks whose contribution is still missing (for deadline messages).
    public var missingRanks: [Int] {
        ranks.filter { pendingStats[$0] == nil || (bucketsReceived[$0] ?? 0) < bucketCount }
    }
}
