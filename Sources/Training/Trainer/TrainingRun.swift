import Foundation
import TensorCore
import TransformerModel

/// How a run starts and where it writes.
public struct RunOptions: Sendable {
    public enum Resume: Sendable, Equatable { case fresh, latest, from(String) }
    public var runDirectory: URL
    public var workers = 1
    public var resume = Resume.fresh
    public var printProgress = true

    public init(runDirectory: URL) { self.runDirectory = runDirectory }
}

/// End-of-run figures (also written as `summary.json`).
public struct RunSummary: Sendable {
    public var step: Int
    public var trainLoss: Double
    public var validation: ValidationResult?
    public var tokensPerSecond: Double
    public var wallSeconds: Double
    public var skippedSteps: Int
}

/// Single-process training: `workers` logical workers share one replica and run their
/// micro-batches in rank order, which is the same arithmetic as the distributed trainer.
public final class TrainingRun {
    public let config: RunConfig
    public let options: RunOptions
    public let model: Transformer
    public let data: any TrainingData
    public let replica: ReplicaTrainer
    public let optimizer: OptimizerStep
    public private(set) var progress = TrainingProgress()
    public private(set) var lastValidation: ValidationResult?
    private let log: RunLog
    private let checkpoint: TrainingCheckpoint
    private var lossScale = LossScaleState()

    public init(config: RunConfig, options: RunOptions) throws {
        self.config = config; self.options = options
        data = try makeTrainingData(config)
        model = Transformer(config: config.model, seed: config.training.seed)
        replica = ReplicaTrainer(model: model, data: data, labelSmoothing: config.training.labelSmoothing,
                                 seed: config.training.seed)
        optimizer = OptimizerStep(layout: model.arena.layout, config: config)
        log = try RunLog(directory: options.runDirectory)
        checkpoint = TrainingCheckpoint(runDirectory: options.runDirectory, config: config)
        switch options.resume {
        case .fresh: break
        case .latest, .from:
            let dir: String? = if case .from(let d) = options.resume { d } else { nil }
            if let c = try checkpoint.find(directory: dir) {
                progress = try checkpoint.restore(c, parameters: model.arena.values.pointer, optimizer: optimizer,
                                                  lossScale: &lossScale)
                say("resumed from \(c.directory) at step \(progress.step)")
            } else {
                say("no checkpoint found in \(options.runDirectory.path)/checkpoints; starting fresh")
            }
        }
    }

    private func say(_ s: String) { if options.printProgress { printLine(s) } }

    /// Micro-batches of one step: `accumulation_steps` per worker, consecutive global indices.
    public var microBatchesPerStep: Int { config.training.accumulationSteps * options.workers }

    /// Trains until `training.max_steps`, validating, logging and checkpointing on the way.
    @discardableResult
    public func run() throws -> RunSummary {
        let t = config.training
        let start = Date()
        let elapsedBefore = progress.elapsedSeconds
        var windowStart = Date(), windowTokens = 0, windowLoss = 0.0, windowLossTokens = 0
        var lastTrainLoss = Double.nan
        let count = model.arena.layout.totalCount
        say("training \(config.name): \(model.parameterCount) parameters, \(options.workers) worker(s) x "
            + "\(t.accumulationSteps) micro-batch(es) of \(t.batchTokens) tokens, steps \(progress.step + 1)...\(t.maxSteps)")
        while progress.step < t.maxSteps {
            let step = progress.step + 1
            let indices = Array(progress.dataCursor..<(progress.dataCursor + microBatchesPerStep))
            replica.lossScale = lossScale.scale
            let stats = try replica.computeGradients(step: step, microBatches: indices)
            let outcome = optimizer.apply(parameters: model.arena.values.pointer, gradients: model.arena.gradients.pointer,
                                          count: count, tokens: stats.tokens, lossScale: lossScale.scale,
                                          lossIsFinite: stats.lossSum.isFinite)
            progress.step = step
            progress.dataCursor += indices.count
            progress.skippedSteps = optimizer.skippedSteps
            progress.targetTokensSeen += stats.tokens
            progress.elapsedSeconds = elapsedBefore + Date().timeIntervalSince(start)
            if !outcome.applied { printError("step \(step): non-finite loss or gradient; step skipped (\(optimizer.skippedSteps) so far)") }
            windowTokens += stats.tokens
            if stats.lossSum.isFinite { windowLoss += stats.lossSum; windowLossTokens += stats.tokens }
            if step % t.logEvery == 0 || step == t.maxSteps {
                let seconds = Date().timeIntervalSince(windowStart)
                let loss = windowLossTokens > 0 ? windowLoss / Double(windowLossTokens) : .nan
                lastTrainLoss = loss
                let tps = Double(windowTokens) / Swift.max(seconds, 1e-9)
                log.logStep(["step": step, "loss": loss, "lr": Double(outcome.learningRate), "grad_norm": outcome.gradNorm,
                             "tokens": stats.tokens, "tokens_per_second": tps, "elapsed_seconds": progress.elapsedSeconds,
                             "workers": options.workers, "skipped_steps": optimizer.skippedSteps])
                say(String(format: "step %d/%d | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s | %.1f s",
                           step, t.maxSteps, loss, outcome.learningRate, outcome.gradNorm, tps, progress.elapsedSeconds))
                windowStart = Date(); windowTokens = 0; windowLoss = 0; windowLossTokens = 0
            }
            let stopping = StopSignal.isRequested
            if step % t.validateEvery == 0 || step == t.maxSteps { try validate(step: step) }
            if step % t.checkpointEvery == 0 || step == t.maxSteps || stopping { try saveCheckpoint() }
            if stopping {
                say("stopped at step \(step); continue with --resume")
                break
            }
        }
        let wall = Date().timeIntervalSince(start)
        let summary = RunSummary(step: progress.step, trainLoss: lastTrainLoss, validation: lastValidation,
                                 tokensPerSecond: Double(progress.targetTokensSeen) / Swift.max(progress.elapsedSeconds, 1e-9),
                                 wallSeconds: progress.elapsedSeconds, skippedSteps: progress.skippedSteps)
        try writeSummary(summary)
        _ = wall
        return summary
    }

    public func validate(step: Int) throws {
        let v = try Validator(pairs: data.validationPairs, decode: data.reportsSequenceAccuracy).run(model)
        lastValidation = v
        var o: [String: Any] = ["step": step, "loss": v.loss, "perplexity": v.perplexity, "token_accuracy": v.tokenAccuracy]
        var line = String(format: "validation @ %d | loss %.4f | ppl %.3f | token acc %.4f", step, v.loss, v.perplexity, v.tokenAccuracy)
        if let s = v.sequenceAccuracy { o["sequence_accuracy"] = s; line += String(format: " | sequence acc %.4f", s) }
        log.logValidation(o)
        say(line)
    }

    public func saveCheckpoint() throws {
        let w = try checkpoint.save(progress: progress, parameters: model.arena.values.pointer, optimizer: optimizer,
                                    workers: options.workers, lossScale: lossScale, tokenizerHash: data.tokenizerHash)
        for warning in w.warnings { printError("warning: \(warning)") }
        say("checkpoint \(w.directory)")
    }

    private func writeSummary(_ s: RunSummary) throws {
        var o: [String: Any] = ["step": s.step, "train_loss": s.trainLoss.isFinite ? s.trainLoss : NSNull(),
                                "tokens_per_second": s.tokensPerSecond, "wall_seconds": s.wallSeconds,
                                "peak_rss_bytes": peakResidentBytes(), "workers": options.workers,
                                "skipped_steps": s.skippedSteps]
        if let v = s.validation {
            o["valid_loss"] = v.loss; o["token_accuracy"] = v.tokenAccuracy; o["perplexity"] = v.perplexity
            if let seq = v.sequenceAccuracy { o["sequence_accuracy"] = seq }
        }
        try log.writeSummary(o)
        say("summary: \(options.runDirectory.path)/summary.json")
    }
}
