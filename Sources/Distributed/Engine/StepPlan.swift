/// Which global micro-batches each worker computes in one step.
///
/// A step consumes `microBatches` consecutive global micro-batches starting at the data cursor
/// (normally `accumulation_steps x workers`); they are split into contiguous runs, one per rank
/// in rank order. Micro-batch contents depend only on their global index, so the union (and so
/// the step's gradient, up to the order of additions) is the same however it is split. When a
/// worker is lost mid-step, the coordinator re-plans the same micro-batches over the survivors.
public struct StepPlan: Sendable, Equatable {
    public let step: Int
    public let cursor: Int
    public let microBatches: Int
    /// rank -> global micro-batch indices
    public let assignments: [Int: [Int]]

    public init(step: Int, cursor: Int, microBatches: Int, ranks: [Int]) {
        self.step = step; self.cursor = cursor; self.microBatches = microBatches
        let sorted = ranks.sorted()
        var a: [Int: [Int]] = [:]
        for (i, r) in sorted.enumerated() {
            let lo = cursor + microBatches * i / sorted.count, hi = cursor + microBatches * (i + 1) / sorted.count
            if hi > lo { a[r] = Array(lo..<hi) }
        }
        assignments = a
    }

    /// Ranks that have work in this step, ascending.
    public var ranks: [Int] { assignments.keys.sorted() }
}
