import Foundation
import TensorCore
import Training
import TransformerModel

/// Single-process training without sockets: `workers` logical workers run their micro-batches in
/// rank order, the same arithmetic as the distributed trainer. The tests' oracle: the
/// coordinator and its workers (also `coordinator --single-process`) must match it bit for bit,
/// and tests of checkpoints, loss scaling and logs use it to train without a cluster.
///
/// The Float16 options change what travels on the wire, so this driver applies the same roundings
/// itself: with `float16.gradients` each logical worker's gradient sum is scaled by the loss scale
/// and rounded to Float16 before the rank-ordered pairwise sum (as the coordinator's reducer does);
/// with `float16.parameters` the gradients are computed on a replica that stores its weight
/// matrices in Float16, loaded with the rounding of the master weights (as a worker's replica). Same config, same result as the coordinator
/// with the same number of workers.
package final class TrainingRun {
    package let session: TrainingSession
    package let replica: ReplicaTrainer
    private var halfScratch: [UInt16] = []
    private var weightBits: [UInt16] = []
    private lazy var rankSum = PairwiseSum(count: session.parameterCount)

    package init(config: RunConfig, options: RunOptions) throws {
        session = try TrainingSession(config: config, options: options)
        let model: Transformer
        if config.training.float16.parameters {
            // Workers receive Float16 weights: compute on a separate replica holding their rounding.
            model = ReplicaTrainer.model(for: config, float16Parameters: true)
        } else {
            model = session.model
        }
        replica = ReplicaTrainer(config: config, model: model, data: session.data)
        syncReplica()
    }

    package var config: RunConfig { session.config }
    package var progress: TrainingProgress { session.progress }
    /// The master weights (Float32).
    package var model: Transformer { session.model }

    /// Loads the master weights into the Float16 replica (only with `float16.parameters`).
    private func syncReplica() {
        guard replica.model !== session.model else { return }
        // Through Float16 bits, as the broadcast delivers them: vectors (kept Float32 in the
        // replica) are rounded too, which `loadParameters(from:)` would not do.
        let count = session.parameterCount
        if weightBits.count != count { weightBits = [UInt16](repeating: 0, count: count) }
        weightBits.withUnsafeMutableBufferPointer { bits in
            guard let base = bits.baseAddress else { return }
            Half.encode(session.model.arena.values.pointer, base, count: count)
            replica.model.arena.loadParameters(half: base)
        }
    }

    /// Trains until `training.max_steps` (or a stop signal), then writes the summary.
    @discardableResult
    package func run() throws -> RunSummary {
        let workers = session.options.workers
        let perStep = session.microBatchesPerStep(workers: workers)
        session.begin(workers: workers)
        while !session.isFinished {
            let cursor = session.progress.dataCursor
            replica.gradientMultiplier = session.gradientMultiplier(microBatches: perStep)
            let grads = replica.model.arena.gradients.pointer
            let stats =
                try config.training.float16.gradients
                ? computeAsFloat16Ranks(cursor: cursor, perStep: perStep, workers: workers)
                : computeInOneTree(cursor: cursor, perStep: perStep)
            try session.completeStep(gradients: grads, statistics: stats, microBatches: perStep, workers: workers)
            syncReplica()
        }
        return try session.finish(workers: workers)
    }

    /// Float32 gradients: the pairwise tree over all micro-batches is the tree over the ranks' sums.
    private func computeInOneTree(cursor: Int, perStep: Int) throws -> LossStatistics {
        var stats = try replica.computeGradients(
            step: session.nextStep, microBatches: Array(cursor..<(cursor + perStep)))
        // A worker flags a non-finite gradient and the coordinator then drops the step's loss.
        if !VectorOps.allFinite(replica.model.arena.gradients.pointer, count: session.parameterCount) {
            stats.lossSum = .nan
        }
        return stats
    }

    /// Float16 gradients: each logical rank's tree-node sums (its run of micro-batches in the
    /// coordinator's `StepPlan`) rounded to Float16 as on the wire, then pushed into the step's tree.
    private func computeAsFloat16Ranks(cursor: Int, perStep: Int, workers: Int) throws -> LossStatistics {
        let count = session.parameterCount
        let grads = replica.model.arena.gradients.pointer
        var total = LossStatistics.zero
        var allFinite = true
        rankSum.reset()
        let plan = StepPlan(step: session.nextStep, cursor: cursor, microBatches: perStep, ranks: Array(0..<workers))
        for rank in plan.ranks {
            guard let indices = plan.assignments[rank], let positions = plan.positions[rank] else { continue }
            let stats = try replica.computeGradientParts(
                step: plan.step, microBatches: indices, firstPosition: positions.lowerBound)
            for part in replica.parts {
                if !(stats.lossSum.isFinite && Float16Rounding.isFiniteAfterRounding(part.values, count: count)) {
                    allFinite = false
                }
                Float16Rounding.round(part.values, count: count, scratch: &halfScratch)
                rankSum.push(part.values, node: part.node)
            }
            total += stats
        }
        rankSum.total(into: grads)
        if !allFinite { total.lossSum = .nan }
        return total
    }
}
