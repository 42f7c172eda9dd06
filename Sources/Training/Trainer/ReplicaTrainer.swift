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
        self.model = model; self.data = data; self.labelSmoothing = labelSmoothing; self.seed = seed
    }

    private lazy var tree = PairwiseSum(count: model.arena.layout.totalCount)

    /// The gradient sums left by the last `computeGradientParts`: one per node of the canonical
    /// tree covering the micro-batches, in position order (valid until the next compute).
    package private(set) var parts: [(node: TreeNode, values: UnsafeMutablePointer<Float>)] = []

    /// Leaves the gradient sum of the given micro-batches in `model.arena.gradients`, summed in the
    /// canonical tree with the first at position 0 (a whole step on one replica).
    package func computeGradients(step: Int, microBatches: [Int]) throws -> LossStatistics {
        let stats = try computeGradientParts(step: step, microBatches: microBatches, firstPosition: 0)
        if parts.count > 1 { tree.total(into: model.arena.gradients.pointer) }
        if microBatches.isEmpty { model.arena.zeroGradients() }
        return stats
    }

    /// Computes the gradients of `microBatches`, the step's micro-batches at positions
    /// `firstPosition ..< firstPosition + microBatches.count`, as the sums of the canonical-tree
    /// nodes covering those positions (`TreeNode.cover`, see `PairwiseSum`): afterwards in `parts`.
    /// An aligned run (the usual case: every worker holds the same power-of-two count) is one
    /// node, left in `model.arena.gradients`. Each micro-batch's gradient is computed on its own,
    /// so the step's gradient does not depend on how its micro-batches are split among workers.
    /// Dropout masks depend on (seed, step, global micro-batch index).
    package func computeGradientParts(step: Int, microBatches: [Int], firstPosition: Int) throws -> LossStatistics {
        var stats = LossStatistics.zero
        let grads = model.arena.gradients
        tree.reset(startingAt: firstPosition)
        parts.removeAll(keepingCapacity: true)
        for index in microBatches {
            model.arena.zeroGradients()
            let batch = data.microBatch(index: index)
            let dropout = DropoutContext(seed: seed, step: step, microBatch: index, rate: model.config.dropout)
            stats += try accumulate(batch, dropout: dropout)
            // One micro-batch is its own leaf: no copy into the tree.
            if microBatches.count > 1 { tree.push(grads.pointer) }
        }
        if microBatches.count == 1 {
            parts = [(TreeNode(start: firstPosition, count: 1), grads.pointer)]
        } else if tree.nodes.count == 1 {
            let node = tree.nodes[0]
            tree.total(into: grads.pointer)
            parts = [(node, grads.pointer)]
        } else {
            parts = tree.nodes.indices.map { (tree.nodes[$0], tree.partial($0)) }
        }
        return stats
    }

    /// Forward, loss (overwriting logits with their gradient) and backward for one batch.
    package func accumulate(_ batch: Batch, dropout: DropoutContext) throws -> LossStatistics {
        let logits = try model.forward(source: batch.source, targetInput: batch.targetInput, batchSize: batch.batchSize,
                                       sourceLength: batch.sourceLength, targetLength: batch.targetLength, dropout: dropout)
        let stats = batch.targetOutput.withUnsafeBufferPointer { targets in
            LabelSmoothedCrossEntropy.evaluate(logits: logits, targets: targets.baseAddress!,
                                               rows: batch.batchSize * batch.targetLength, vocab: model.config.vocabSize,
                                               smoothing: labelSmoothing, gradientScale: gradientMultiplier)
        }
        model.backward()
        return stats
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
