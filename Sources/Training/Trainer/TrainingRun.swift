import Foundation
import TensorCore
import TransformerModel

/// Single-process training without sockets: `workers` logical workers share the session's model
/// and run their micro-batches in rank order, the same arithmetic as the distributed trainer.
public final class TrainingRun {
    public let session: TrainingSession
    public let replica: ReplicaTrainer

    public init(config: RunConfig, options: RunOptions) throws {
        session = try TrainingSession(config: config, options: options)
        replica = ReplicaTrainer(model: session.model, data: session.data, labelSmoothing: config.training.labelSmoothing,
                                 seed: config.training.seed)
    }

    public var config: RunConfig { session.config }
    public var progress: TrainingProgress { session.progress }
    public var model: Transformer { session.model }

    /// Trains until `training.max_steps` (or a stop signal), then writes the summary.
    @discardableResult
    public func run() throws -> RunSummary {
        let workers = session.options.workers
        let perStep = session.microBatchesPerStep(workers: workers)
        session.begin(workers: workers)
        while !session.isFinished {
            let cursor = session.progress.dataCursor
            replica.lossScale = session.lossScale.scale
            let stats = try replica.computeGradients(step: session.nextStep, microBatches: Array(cursor..<(cursor + perStep)))
            try session.completeStep(gradients: model.arena.gradients.pointer, statistics: stats, microBatches: perStep,
                                     workers: workers)
        }
        return try session.finish(workers: workers)
    }
}
