/// Which global micro-batches each worker computes in one step.
///
/// A step consumes `microBatches` consecutive global micro-batches starting at the data cursor
/// (normally `accumulation_steps x workers`); they are split into contiguous runs, one per rank
/// in rank order. Micro-batch contents depend only on their global index, so the union (and so
/// the step's gradient) is the same however it is split. When a
/// worker is lost mid-step, the coordinator re-plans the same micro-batches over the survivors.
/// The sum is the step's canonical tree over positions (`TreeNode`), so any split gives the same bits.
package struct StepPlan: Sendable, Equatable {
    package let step: Int
    package let cursor: Int
    package let microBatches: Int
    /// rank -> global micro-batch indices
    package let assignments: [Int: [Int]]
    /// rank -> its run of the step's positions (index - cursor): where its sums sit in the tree.
    package let positions: [Int: Range<Int>]

    package init(step: Int, cursor: Int, microBatches: Int, ranks: [Int]) {
        self.step = step
        self.cursor = cursor
        self.microBatches = microBatches
        let sorted = ranks.sorted()
        var a: [Int: [Int]] = [:], p: [Int: Range<Int>] = [:]
        for (i, r) in sorted.enumerated() {
            let lo = microBatches * i / sorted.count, hi = microBatches * (i + 1) / sorted.count
            if hi > lo {
                a[r] = Array((cursor + lo)..<(cursor + hi))
                p[r] = lo..<hi
            }
        }
        assignments = a
        positions = p
    }

    /// Ranks that have work in this step, ascending.
    package var ranks: [Int] { assignments.keys.sorted() }
}
