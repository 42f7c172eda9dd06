import TensorCore
import TransformerModel

/// Computes the gradient sum of a list of micro-batches on one model replica: the worker's half of
/// a data-parallel step.
///
/// Gradients are of the SUM of token losses (not the mean): sums from micro-batches and workers add
/// up exactly, and the coordinator divides once by the global token count, so the result is the
/// mean over all non-pad target tokens of the global batch, never a mean of means.
package final class ReplicaTrainer {
    package let model: Transformer
    package let data: any TrainingData
    package let labelSmoothing: Float
    package let seed: UInt64
    /// Multiplies d(sum of token losses)/d(logits): `TrainingSession.gradientMultiplier` (the loss
    /// scale over the step's token budget with Float16 gradients; 1 otherwise).
    package var gradientMultiplier: Float = 1

    package init(model: Transformer, data: any TrainingData, labelSmoothing: Float, seed: UInt64) {
        self.model = model
        self.data = data
        self.labelSmoothing = labelSmoothing
        self.seed = seed
    }

    private lazy var tree = PairwiseSum(count: model.arena.layout.totalCount)

    /// The gradient sums left by the last `computeGradientParts`: one per node of the canonical
    /// tree covering the micro-batches, in position order (valid until the next compute).
    package private(set) var parts: [(node: TreeNode, values: UnsafeMutablePointer<Float>)] = []

    /// Leaves the gradient sum of the given micro-batches in `model.arena.gradients`, summed in the
    /// canonical tree with the first at position 0 (a whole step on one replica).
    package func computeGradients(step: Int, microBatches: [Int]) throws -> LossStatistics {
        let stats = try computeGradientParts(step: step, microBatches: microBatches, firstPosition: 0)
        if microBatches.count > 1 { tree.total(into: model.arena.gradients.pointer) }
        if microBatches.isEmpty { model.arena.zeroGradients() }
        return stats
    }

    /// Computes the gradients of `microBatches`, the step's micro-batches at positions
    /// `firstPosition ..< firstPosition + microBatches.count`, as the sums of the canonical-tree
    /// nodes covering those positions (`TreeNode.cover`, see `PairwiseSum`): afterwards in `parts`.
    /// An aligned run (the usual case: every worker holds the same power-of-two count) is one
    /// node. One micro-batch is left in `model.arena.gradients`, more in the tree's partial sums.
    /// Each micro-batch's gradient is computed on its own, so the step's gradient does not depend
    /// on how its micro-batches are split among workers.
    /// Dropout masks depend on (seed, step, global micro-batch index).
    package func computeGradientParts(step: Int, microBatches: [Int], firstPosition: Int) throws -> LossStatistics {
        try computeGradientParts(step: step, microBatches: microBatches, firstPosition: firstPosition, whenFinal: nil)
    }

    /// `computeGradientParts`, calling `whenFinal(node, values, x)` as soon as the values of the
    /// sum of `node` at arena offsets >= x are final, so a worker can send them while backward
    /// goes on: the nodes before the last one when the last micro-batch starts (the last
    /// micro-batch only adds to the last node), and the last node during that micro-batch's
    /// backward, from the end of the arena (x decreasing, last x = 0; see
    /// `Transformer.backward(finalFrom:)`). The last micro-batch's tree push is done range by
    /// range as backward finishes each (`PairwiseSum.beginPush`), which gives the bits of the
    /// whole push. `values` is the node's entry of `parts`, which holds the same pointers
    /// afterwards; nothing writes a range of it again in this compute once it was reported final.
    package func computeGradientParts(
        step: Int, microBatches: [Int], firstPosition: Int,
        whenFinal: ((TreeNode, UnsafeMutablePointer<Float>, Int) -> Void)?
    ) throws -> LossStatistics {
        var stats = LossStatistics.zero
        let grads = model.arena.gradients
        let count = model.arena.layout.totalCount
        let tree = self.tree
        tree.reset(startingAt: firstPosition)
        parts.removeAll(keepingCapacity: true)
        let nodes = TreeNode.cover(firstPosition..<(firstPosition + microBatches.count))
        for (n, index) in microBatches.enumerated() {
            let isLast = n == microBatches.count - 1
            if isLast, let whenFinal, microBatches.count > 1 {
                // Every node but the last is complete: the tree holds them, bottom first.
                precondition(tree.nodes.starts(with: nodes.dropLast()), "the tree's nodes are the cover of the run")
                for (i, node) in nodes.dropLast().enumerated() { whenFinal(node, tree.partial(i), 0) }
            }
            model.arena.zeroGradients()
            let batch = data.microBatch(index: index)
            let dropout = DropoutContext(seed: seed, step: step, microBatch: index, rate: model.config.dropout)
            stats += try forwardAndLoss(batch, dropout: dropout)
            guard isLast, let node = nodes.last else {
                // One micro-batch is its own leaf: no copy into the tree.
                model.backward()
                if microBatches.count > 1 { tree.push(grads.pointer) }
                continue
            }
            if microBatches.count == 1 {
                parts = [(node, grads.pointer)]
                model.backward(finalFrom: whenFinal.map { report in { report(node, grads.pointer, $0) } })
            } else {
                tree.beginPush(grads.pointer)
                precondition(tree.nodes == nodes, "the tree's nodes are the cover of the run")
                parts = nodes.indices.map { (nodes[$0], tree.partial($0)) }
                let values = tree.partial(nodes.count - 1)
                // What is already pushed: the range [done, count) (the end of the arena finishes first).
                var done = count
                model.backward { final in
                    guard final < done else { return }
                    tree.finishPush(final..<done)
                    done = final
                    whenFinal?(node, values, final)
                }
                precondition(done == 0, "backward reports the whole arena final at its end")
            }
        }
        return stats
    }

    /// Forward, loss (overwriting logits with their gradient) and backward for one batch.
    package func accumulate(_ batch: Batch, dropout: DropoutContext) throws -> LossStatistics {
        let stats = try forwardAndLoss(batch, dropout: dropout)
        model.backward()
        return stats
    }

    /// Forward and loss of one batch: afterwards `model.logits` holds d(loss)/d(logits).
    private func forwardAndLoss(_ batch: Batch, dropout: DropoutContext) throws -> LossStatistics {
        let logits = try model.forward(
            source: batch.source, targetInput: batch.targetInput, batchSize: batch.batchSize,
            sourceLength: batch.sourceLength, targetLength: batch.targetLength, dropout: dropout)
        return batch.targetOutput.withUnsafeBufferPointer { targets in
            LabelSmoothedCrossEntropy.evaluate(
                logits: logits, targets: targets.baseAddress!,
                rows: batch.batchSize * batch.targetLength, vocab: model.config.vocabSize,
                smoothing: labelSmoothing, gradientScale: gradientMultiplier)
        }
    }
}

extension ReplicaTrainer {
    /// The model of a run as every process builds it: the weights the config's seed gives and the
    /// run's memory plans (activation checkpointing, Float16 activations). With
    /// `float16Parameters` its weight matrices are stored in Float16 (a worker's replica under
    /// `training.float16.parameters`); the coordinator's master copy is always Float32.
    package static func model(for config: RunConfig, float16Parameters: Bool = false) -> Transformer {
        let model = Transformer(config: config.model, seed: config.training.seed, float16Parameters: float16Parameters)
        model.activationCheckpointing = config.training.activationCheckpointing
        model.float16Activations = config.training.float16.activations
        return model
    }

    /// A replica of `config`'s run computing on `model` (see `model(for:float16Parameters:)`).
    package convenience init(config: RunConfig, model: Transformer, data: any TrainingData) {
        self.init(model: model, data: data, labelSmoothing: config.training.labelSmoothing, seed: config.training.seed)
    }
}
