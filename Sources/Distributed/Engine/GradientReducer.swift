import TensorCore
import Training

/// Sums the workers' gradient buckets into one buffer, in rank order, while buckets arrive.
///
/// For bit-reproducible sums the order of additions must not depend on arrival order: bucket `b` of
/// the total is ((g_0 + g_1) + g_2) + ... over the contributing ranks in ascending order. A bucket
/// that arrives before its turn is stashed and added as soon as the ranks before it are in, so
/// most of the reduction still overlaps reception.
public final class GradientReducer {
    public let total: FloatBuffer
    public let count: Int
    public let bucketElements: Int
    public var bucketCount: Int { (count + bucketElements - 1) / bucketElements }
    private var ranks: [Int] = []
    /// Per bucket: index into `ranks` of the next rank whose contribution may be added.
    private var next: [Int] = []
    private var stash: [Int: [Int: [Float]]] = [:]   // bucket -> rank -> values
    private var bucketsReceived: [Int: Int] = [:]     // rank -> buckets received (added or stashed)
    private var pendingStats: [Int: LossStatistics] = [:]
    /// The ranks' statistics summed in rank order, once all are in.
    public private(set) var statistics = LossStatistics.zero

    public init(count: Int, bucketElements: Int) {
        self.count = count
        self.bucketElements = bucketElements
        total = FloatBuffer(count: count)
    }

    /// Starts a step whose gradient comes from `ranks` (any order; summed ascending).
    public func begin(ranks: [Int]) {
        self.ranks = ranks.sorted()
        next = [Int](repeating: 0, count: bucketCount)
        stash.removeAll(keepingCapacity: true)
        bucketsReceived.removeAll()
        pendingStats.removeAll()
        statistics = .zero
    }

    public func range(ofBucket b: Int) -> Range<Int> { (b * bucketElements)..<Swift.min(count, (b + 1) * bucketElements) }

    /// Adds (or stashes) rank `rank`'s values for bucket `b`. `values` holds `range(ofBucket:).count` floats.
    public func receive(rank: Int, bucket b: Int, values: UnsafePointer<Float>) {
        guard b >= 0, b < bucketCount, ranks.contains(rank), next[b] < ranks.count else { return }
        bucketsReceived[rank, default: 0] += 1
        if ranks[next[b]] == rank {
            add(values, bucket: b, first: next[b] == 0)
            next[b] += 1
            while next[b] < ranks.count, let stashed = stash[b]?.removeValue(forKey: ranks[next[b]]) {
                stashed.withUnsafeBufferPointer { add($0.baseAddress!, bucket: b, first: false) }
                next[b] += 1
            }
        } else {
            let n = range(ofBucket: b).count
            stash[b, default: [:]][rank] = Array(UnsafeBufferPointer(start: values, count: n))
        }
    }

    private func add(_ values: UnsafePointer<Float>, bucket b: Int, first: Bool) {
        let r = range(ofBucket: b)
        let dst = total.pointer + r.lowerBound
        if first { dst.update(from: values, count: r.count) } else { VectorOps.add(values, into: dst, count: r.count) }
    }

    /// Records a rank's loss statistics for the step.
    public func receiveStatistics(rank: Int, _ s: LossStatistics) {
        guard ranks.contains(rank), pendingStats[rank] == nil else { return }
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
