import Foundation
import TensorCore
import TransformerModel

/// A step whose optimizer update is applied and logged (`TrainingSession.applyStep`) and whose
/// validation, checkpoint and status are still to come (`finishStep`).
package struct AppliedStep: Sendable {
    package let step: Int
    package let outcome: StepOutcome
    package let statistics: LossStatistics
    package let workers: Int
    /// The validation due after this step (nil: none): compute its units with the new weights.
    package let validation: ValidationWork?
}

/// How a run starts and where it writes.
public struct RunOptions: Sendable {
    /// Where the run starts: from scratch, from the newest valid checkpoint of the run directory, or
    /// from the checkpoint at a path.
    public enum Resume: Sendable, Equatable { case fresh, latest, from(String) }
    /// Where checkpoints, logs and `summary.json` are written.
    public var runDirectory: URL
    /// Workers computing each step (each step uses `accumulation_steps x workers` micro-batches).
    public var workers = 1
    /// Fresh (the default) or resumed.
    public var resume = Resume.fresh
    /// Print the progress lines to standard output.
    public var printProgress = true

    /// A fresh run of one worker writing to `runDirectory`.
    public init(runDirectory: URL) { self.runDirectory = runDirectory }
}

/// End-of-run figures (also written as `summary.json`).
public struct RunSummary: Sendable {
    /// The last step trained.
    public var step: Int
    /// Label-smoothed training loss per target token over the last `log_every` window of steps.
    public var trainLoss: Double
    /// The last validation (nil when the run never validated).
    public var validation: ValidationResult?
    /// Target tokens trained per second of wall clock over the whole run.
    public var tokensPerSecond: Double
    /// Wall-clock seconds of training, those before a resume included.
    public var wallSeconds: Double
    /// Steps whose update was skipped for a non-finite gradient (Float16 loss-scale overflow).
    public var skippedSteps: Int
    /// The best validation by `training.best_metric` (nil: no validation reported it).
    public var best: BestValidation?
    /// The early-stop line (nil unless `training.patience` ended the run); printed last.
    public var earlyStopNote: String?
}

/// The coordinator's side of a run, whoever computes the gradients: the master weights, AdamW and
/// its schedule, resume, metrics, validation, checkpoints and the summary.
///
/// The coordinator and the tests' socket-free `TrainingRun` (TestSupport) both feed it one
/// summed gradient per step through `completeStep`, so there is one bookkeeping path.
package final class TrainingSession {
    package let config: RunConfig
    package let options: RunOptions
    /// Holds the master weights (Float32) in its arena; also used for validation.
    package let model: Transformer
    package let data: any TrainingData
    package let optimizer: OptimizerStep
    package private(set) var progress = TrainingProgress()
    package private(set) var lastValidation: ValidationResult?
    /// Dynamic loss scaling with Float16 gradients (see `LossScalePolicy`); static 1 otherwise.
    package var lossScale = LossScaleState()
    /// Set when a stop signal ended the run early.
    package private(set) var stopped = false
    /// Set when `training.patience` validations in a row did not improve the best metric.
    package private(set) var stoppedEarly = false
    /// The best validation so far (`checkpoints/best` names its checkpoint).
    package var best: BestValidation? { bestTracker.best }
    private var bestTracker: BestTracker
    /// The step `checkpoints/best` names on disk; kept until the pointer has moved on.
    private var bestOnDisk: Int?
    /// The step held by the newest checkpoint this session wrote or resumed from.
    private var checkpointedStep: Int?
    /// Why the last checkpoint attempt failed (nil once one succeeds); `finish` reports it.
    private var checkpointFailure: String?
    private let log: RunLog
    private let checkpoint: TrainingCheckpoint
    private var started = Date()
    private var elapsedBefore = 0.0
    private var window = (start: Date(), tokens: 0, loss: 0.0, lossTokens: 0)
    private var lastTrainLoss = Double.nan

    package init(config: RunConfig, options: RunOptions) throws {
        self.config = config
        self.options = options
        data = try makeTrainingData(config)
        model = ReplicaTrainer.model(for: config)
        optimizer = OptimizerStep(layout: model.arena.layout, config: config)
        let setAside = options.resume == .fresh ? try Self.setAsideEarlierRun(in: options.runDirectory) : nil
        log = try RunLog(directory: options.runDirectory)
        checkpoint = TrainingCheckpoint(runDirectory: options.runDirectory, config: config)
        lossScale = LossScaleState(dynamic: config.training.float16.gradients)
        bestTracker = BestTracker(metric: config.bestMetric, patience: config.training.patience)
        if let setAside { say(setAside) }
        if let report = data.loadReport { say("data: \(report)") }
        switch options.resume {
        case .fresh: break
        case .latest, .from:
            let dir: String? = if case .from(let d) = options.resume { d } else { nil }
            if let c = try checkpoint.find(directory: dir) {
                progress = try checkpoint.restore(
                    c, parameters: model.arena.values.pointer, optimizer: optimizer,
                    lossScale: &lossScale)
                checkpointedStep = progress.step
                say("resumed from \(c.directory) at step \(progress.step)")
                try restoreBest(from: c)
            } else {
                say("no checkpoint found in \(options.runDirectory.path)/checkpoints; starting fresh")
            }
        }
        // Steps after the checkpoint were logged by the stopped run and are about to be logged again.
        if options.resume != .fresh { try log.discardEntries(afterStep: progress.step) }
    }

    /// What a run writes in its directory (`RunLog`, `CheckpointStore`, the summary and status).
    static let runFiles = ["checkpoints", "metrics.jsonl", "valid.jsonl", "summary.json", "status.json", "tensorboard"]

    /// A fresh run must not write over an earlier one in the same directory: its lines would be
    /// appended to the old logs, and the old run's later checkpoints would stay beside the new
    /// ones for `latest`, `average --last N` and `--resume` to mix. So when the directory holds a
    /// run (a checkpoint or a logged line), that run's files move, whole and unchanged, to
    /// `earlier-runs/N/` inside it (nothing is deleted), and the message saying so is returned.
    static func setAsideEarlierRun(in directory: URL) throws(TrainingError) -> String? {
        let fm = FileManager.default
        let checkpoints = directory.appendingPathComponent("checkpoints").path
        let steps = ((try? fm.contentsOfDirectory(atPath: checkpoints)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
        let metrics = directory.appendingPathComponent("metrics.jsonl").path
        let logged = ((try? fm.attributesOfItem(atPath: metrics))?[.size] as? NSNumber)?.intValue ?? 0
        guard !steps.isEmpty || logged > 0 else { return nil }
        let earlier = directory.appendingPathComponent("earlier-runs")
        var n = 1
        while fm.fileExists(atPath: earlier.appendingPathComponent("\(n)").path) { n += 1 }
        let target = earlier.appendingPathComponent("\(n)")
        do {
            try fm.createDirectory(at: target, withIntermediateDirectories: true)
            for name in runFiles where fm.fileExists(atPath: directory.appendingPathComponent(name).path) {
                try fm.moveItem(
                    at: directory.appendingPathComponent(name), to: target.appendingPathComponent(name))
            }
        } catch {
            throw .runDirectory(
                path: directory.path,
                reason:
                    "it holds an earlier run, which could not be moved to \(target.path): \(error.localizedDescription)"
                    + "; continue it with --resume, or train into another --run-dir")
        }
        let held = steps.last.map { "checkpoints up to \($0)" } ?? "logged steps, no checkpoint"
        return "\(directory.path) held an earlier run (\(held)): moved its files to \(target.path) "
            + "(nothing deleted; --resume continues a run instead of starting one)"
    }

    package func say(_ s: String) {
        guard options.printProgress else { return }
        status.clearLine()
        printLine(s)
    }

    /// Ends the terminal status line (before the run's last lines).
    package func closeStatusLine() { status.closeLine() }

    /// The workers as the coordinator last saw them (set before each `completeStep`), for
    /// `status.json` and the status line.
    package var workerStatus: [WorkerStatus] = []
    private lazy var status = RunStatus(directory: options.runDirectory, printProgress: options.printProgress)
    private var lastValidationLine: [String: Any]?
    private var tokensAtBegin = 0

    /// Restores the best validation and patience counter of a resumed checkpoint and makes
    /// `checkpoints/best` agree with it (repairing a damaged or stale pointer).
    private func restoreBest(from c: LoadedCheckpoint) throws {
        if let note = try bestTracker.restore(state: c.stateObject(), source: c.directory + "/state.json") {
            printError("warning: \(note)")
        }
        stoppedEarly = bestTracker.isExhausted
        guard let best = bestTracker.best else { return }
        let store = checkpoint.store
        guard Posix.isDirectory(store.checkpointsDirectory + "/" + best.checkpointName) else {
            printError(
                "warning: the best checkpoint \(best.checkpointName) recorded in \(c.directory)/state.json no longer "
                    + "exists; \(store.bestPath) will name the next improvement")
            return
        }
        bestOnDisk = best.step
        let onDisk: String?
        do { onDisk = try store.bestName() } catch {
            printError("warning: \(error); rewriting it to \(best.checkpointName)")
            onDisk = nil
        }
        if onDisk != best.checkpointName { try store.writeBestPointer(step: best.step) }
    }

    /// True when max_steps is reached, a stop signal ended the run, or patience ran out.
    /// The coordinator (and the tests' `TrainingRun`) loop until it holds.
    package var isFinished: Bool { stopped || stoppedEarly || progress.step >= config.training.maxSteps }
    package var nextStep: Int { progress.step + 1 }
    package var parameterCount: Int { model.arena.layout.totalCount }

    /// Micro-batches of one step for `workers` workers: `accumulation_steps` each.
    package func microBatchesPerStep(workers: Int) -> Int { config.training.accumulationSteps * workers }

    /// Starts the wall clock (call right before the first step).
    package func begin(workers: Int) {
        started = Date()
        elapsedBefore = progress.elapsedSeconds
        window.start = Date()
        tokensAtBegin = progress.targetTokensSeen
        status.begin(step: progress.step)
        let t = config.training
        say(
            "training \(config.name): \(model.parameterCount) parameters, \(workers) worker(s) x \(t.accumulationSteps) "
                + "micro-batch(es) of \(t.batchTokens) tokens, steps \(progress.step + 1)...\(t.maxSteps)")
    }

    /// Applies one step from the summed gradient (`gradients`, overwritten) of `microBatches`
    /// global micro-batches, then logs, validates and checkpoints as due: `applyStep`, the
    /// validation's units computed here, `finishStep`. `afterApply` runs right after the
    /// optimizer (the coordinator broadcasts weights there); what it returns, plus `extra`, goes
    /// into the step's metrics line (e.g. time spent communicating, bytes moved).
    @discardableResult
    package func completeStep(
        gradients: UnsafeMutablePointer<Float>, statistics stats: LossStatistics, microBatches: Int,
        workers: Int, extra: [String: Any] = [:],
        afterApply: () -> [String: Any] = { [:] }
    ) throws -> StepOutcome {
        let applied = applyStep(
            gradients: gradients, statistics: stats, microBatches: microBatches, workers: workers,
            extra: extra, afterApply: afterApply)
        guard let work = applied.validation else { return try finishStep(applied, validation: nil) }
        let start = Date()
        let parts = try work.computeAll(model: model)
        return try finishStep(applied, validation: (parts, Date().timeIntervalSince(start)))
    }

    /// The optimizer step and its metrics line: the first half of `completeStep`. Compute the
    /// returned step's `validation` units (if any) with the new weights, then call `finishStep`.
    package func applyStep(
        gradients: UnsafeMutablePointer<Float>, statistics stats: LossStatistics, microBatches: Int,
        workers: Int, extra: [String: Any] = [:],
        afterApply: () -> [String: Any] = { [:] }
    ) -> AppliedStep {
        let t = config.training
        let step = progress.step + 1
        let outcome = optimizer.apply(
            parameters: model.arena.values.pointer, gradients: gradients,
            count: parameterCount, tokens: stats.tokens,
            gradientMultiplier: gradientMultiplier(microBatches: microBatches),
            lossIsFinite: stats.lossSum.isFinite)
        let scaleUsed = lossScale.scale
        lossScale.update(overflow: outcome.nonFinite)
        var extra = extra
        for (k, v) in afterApply() { extra[k] = v }
        progress.step = step
        progress.dataCursor += microBatches
        progress.skippedSteps = optimizer.skippedSteps
        progress.targetTokensSeen += stats.tokens
        progress.elapsedSeconds = elapsedBefore + Date().timeIntervalSince(started)
        if !outcome.applied {
            let scaling = lossScale.isDynamic ? "; loss scale now \(lossScale.scale)" : ""
            printError(
                "step \(step): non-finite loss or gradient; step skipped (\(optimizer.skippedSteps) so far\(scaling))")
        }
        window.tokens += stats.tokens
        if stats.lossSum.isFinite {
            window.loss += stats.lossSum
            window.lossTokens += stats.tokens
        }
        if step % t.logEvery == 0 || step == t.maxSteps {
            let seconds = Date().timeIntervalSince(window.start)
            let loss = window.lossTokens > 0 ? window.loss / Double(window.lossTokens) : .nan
            lastTrainLoss = loss
            let tps = Double(window.tokens) / Swift.max(seconds, 1e-9)
            var line: [String: Any] = [
                "step": step, "loss": loss, "lr": Double(outcome.learningRate),
                "grad_norm": outcome.gradNorm, "tokens": stats.tokens, "tokens_per_second": tps,
                "elapsed_seconds": progress.elapsedSeconds, "workers": workers,
                "skipped_steps": optimizer.skippedSteps, "loss_scale": Double(scaleUsed),
            ]
            for (k, v) in extra { line[k] = v }
            log.logStep(line)
            say(
                String(
                    format: "step %d/%d | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s | %.1f s",
                    step, t.maxSteps, loss, outcome.learningRate, outcome.gradNorm, tps, progress.elapsedSeconds))
            window = (Date(), 0, 0, 0)
        }
        let due = step % t.validateEvery == 0 || step == t.maxSteps
        return AppliedStep(
            step: step, outcome: outcome, statistics: stats, workers: workers,
            validation: due ? validationWork(step: step) : nil)
    }

    /// The validation due at `step`: every validation scores loss (and the toy tasks' exact
    /// decodes); the scored translations come every `scoreEvery`-th validation and at the last step.
    package func validationWork(step: Int) -> ValidationWork {
        let every = data.scoreEvery
        let number = step / Swift.max(1, config.training.validateEvery)
        let translating = every > 0 && (step == config.training.maxSteps || number % every == 0)
        return ValidationWork(data: data, translating: translating, maxLen: model.config.maxLen)
    }

    /// The second half of `completeStep`: records the validation (the results of every unit of
    /// `applied.validation`, in unit order, and how long they took), then checkpoints, stops and
    /// writes `status.json` as due.
    @discardableResult
    package func finishStep(_ applied: AppliedStep, validation: (parts: [ValidationPart], seconds: Double)?) throws
        -> StepOutcome
    {
        let t = config.training
        let step = applied.step
        precondition(step == progress.step, "finishStep for step \(step) after step \(progress.step) was applied")
        precondition(
            (applied.validation == nil) == (validation == nil), "a due validation needs its results (and only then)")
        let stopping = StopSignal.isRequested
        var improved = false
        if let work = applied.validation, let validation {
            improved = recordValidation(step: step, work: work, parts: validation.parts, seconds: validation.seconds)
        }
        // A new best gets a checkpoint at once, so `checkpoints/best` always names one of its step.
        let patienceOver = bestTracker.isExhausted
        if step % t.checkpointEvery == 0 || step == t.maxSteps || stopping || improved || patienceOver {
            try saveCheckpoint(workers: applied.workers)
        }
        if patienceOver { stoppedEarly = true }
        if stopping {
            stopped = true
            say("stopped at step \(step); continue with --resume")
        }
        // After validation and checkpoint, so the file says what the step led to.
        let stats = applied.statistics
        let stepLoss = stats.tokens > 0 && stats.lossSum.isFinite ? stats.lossSum / Double(stats.tokens) : .nan
        status.update(
            step: step, maxSteps: t.maxSteps, loss: stepLoss, learningRate: Double(applied.outcome.learningRate),
            tokensPerSecond: Double(progress.targetTokensSeen - tokensAtBegin)
                / Swift.max(Date().timeIntervalSince(started), 1e-9),
            workers: workerStatus, lastValidation: lastValidationLine)
        return applied.outcome
    }

    /// Combines a validation's unit results, logs them, and records the result for
    /// `best_metric`; returns true when it is the new best.
    private func recordValidation(step: Int, work: ValidationWork, parts: [ValidationPart], seconds: Double) -> Bool {
        let (v, translations) = work.combine(parts)
        lastValidation = v
        var o: [String: Any] = [
            "step": step, "loss": v.loss, "perplexity": v.perplexity, "token_accuracy": v.tokenAccuracy,
            "seconds": seconds,
        ]
        var line = String(
            format: "validation @ %d | loss %.4f | ppl %.3f | token acc %.4f", step, v.loss, v.perplexity,
            v.tokenAccuracy)
        if let s = v.sequenceAccuracy {
            o["sequence_accuracy"] = s
            line += String(format: " | sequence acc %.4f", s)
        }
        let extras = work.translationBatches.isEmpty ? [:] : data.score(translations: translations)
        for (key, value) in extras.sorted(by: { $0.key < $1.key }) {
            o[key] = value
            line += String(format: " | %@ %.2f", key, value)
            if key == "bleu" { lastValidation?.bleu = value }
        }
        log.logValidation(o)
        lastValidationLine = o
        var improved = false
        if let value = bestTracker.value(in: v, extras: extras) {
            improved = bestTracker.observe(value, step: step)
            if improved {
                line += " | new best"
            } else if let best = bestTracker.best {
                let patience = config.training.patience > 0 ? "/\(config.training.patience)" : ""
                line +=
                    " | best \(best.formattedValue) @ \(best.step), \(bestTracker.validationsSinceBest)\(patience) without improvement"
            }
        }
        say(line)
        return improved
    }

    /// Checkpoints the current step and moves `checkpoints/best` to a new best's checkpoint.
    ///
    /// A checkpoint that cannot be written (disk full, read-only file system) does not stop the
    /// run: an error line names the checkpoint, the system's reason, what `latest` still names and
    /// the step that retries; the store has removed its partial files. `finish` fails if the run's
    /// last checkpoint attempt failed.
    package func saveCheckpoint(workers: Int) throws {
        // The checkpoint `best` names on disk and the new best (if it is older than this step)
        // both survive pruning until the pointer names the new one, so a crash never leaves a
        // dangling pointer.
        let preserving = Set([bestOnDisk, bestTracker.best?.step].compactMap { $0 })
        let store = checkpoint.store
        let w: WrittenCheckpoint
        do {
            w = try checkpoint.save(
                progress: progress, parameters: model.arena.values.pointer, optimizer: optimizer,
                workers: workers, lossScale: lossScale, tokenizerHash: data.tokenizerHash,
                extraState: bestTracker.stateFields, preserving: preserving)
        } catch let error as CheckpointError {
            guard case .cannotWrite = error else { throw error }
            let latest = (try? CheckpointStore.pointerName(store.latestPath, missingIsNil: true)).flatMap { $0 }
            reportUnwritten(
                "\(error); \(store.latestPath) " + (latest.map { "still names \($0)" } ?? "does not exist yet"))
            return
        }
        checkpointFailure = nil
        for warning in w.warnings { printError("warning: \(warning)") }
        checkpointedStep = progress.step
        say("checkpoint \(w.directory)")
        if let best = bestTracker.best, best.step != bestOnDisk,
            Posix.isDirectory(store.checkpointsDirectory + "/" + best.checkpointName)
        {
            do throws(CheckpointError) {
                try store.writeBestPointer(step: best.step)
                bestOnDisk = best.step
            } catch {
                let old =
                    bestOnDisk.map { "still names \(CheckpointStore.directoryName(step: $0))" } ?? "is not written"
                reportUnwritten("\(store.bestPath) not moved to \(best.checkpointName): \(error); it \(old)")
            }
        }
    }

    /// The newest checkpoint of this session (written or resumed from), for error lines.
    private var lastCheckpointDescription: String {
        guard let step = checkpointedStep else { return "the run has no checkpoint" }
        return "the run's last checkpoint is step \(step) at \(checkpoint.store.checkpointsDirectory)/"
            + CheckpointStore.directoryName(step: step)
    }

    /// Prints the error line of a checkpoint or `best` pointer that could not be written and
    /// remembers it for `finish`. Training goes on: the next checkpoint retries.
    private func reportUnwritten(_ failure: String) {
        let t = config.training, step = progress.step
        let isFinal = stopped || StopSignal.isRequested || bestTracker.isExhausted || step >= t.maxSteps
        let next = Swift.min((step / t.checkpointEvery + 1) * t.checkpointEvery, t.maxSteps)
        printError(
            "error: \(failure); "
                + (isFinal
                    ? "this was the run's final checkpoint; \(lastCheckpointDescription)"
                    : "training continues and the next checkpoint (step \(next), or a new best before it) retries"))
        checkpointFailure = "the checkpoint of step \(step) could not be written (\(failure))"
    }

    /// The line that ends a run stopped by `training.patience`.
    private var earlyStopNote: String? {
        guard stoppedEarly else { return nil }
        var note =
            "early stop at step \(progress.step): no improvement of valid \(config.bestMetric.rawValue) for "
            + "\(bestTracker.validationsSinceBest) validations"
        if let best = bestTracker.best {
            note +=
                "; best \(best.formattedValue) at step \(best.step), \(checkpoint.store.checkpointsDirectory)/\(best.checkpointName)"
        }
        return note
    }

    /// Ends the run at the last completed step, for a stop request the next step cannot honour
    /// (its workers are gone: a Slurm job that ends signals every process, and `srun` kills the
    /// workers): checkpoints that step unless a checkpoint already holds it. The weights, AdamW and
    /// the data cursor change only when a step completes, so this is the checkpoint of that step.
    package func stopAtCompletedStep(workers: Int) throws {
        if progress.step > 0 && checkpointedStep != progress.step { try saveCheckpoint(workers: workers) }
        stopped = true
        say("stopped at step \(progress.step); continue with --resume")
    }

    /// Writes `summary.json` and returns the figures.
    package func finish(workers: Int) throws -> RunSummary {
        let s = RunSummary(
            step: progress.step, trainLoss: lastTrainLoss, validation: lastValidation,
            tokensPerSecond: Double(progress.targetTokensSeen) / Swift.max(progress.elapsedSeconds, 1e-9),
            wallSeconds: progress.elapsedSeconds, skippedSteps: progress.skippedSteps,
            best: bestTracker.best, earlyStopNote: earlyStopNote)
        var o: [String: Any] = [
            "step": s.step, "train_loss": s.trainLoss.isFinite ? s.trainLoss : NSNull(),
            "tokens_per_second": s.tokensPerSecond, "wall_seconds": s.wallSeconds,
            "peak_rss_bytes": peakResidentBytes(), "workers": workers, "skipped_steps": s.skippedSteps,
        ]
        if let v = s.validation {
            o["valid_loss"] = v.loss
            o["token_accuracy"] = v.tokenAccuracy
            o["perplexity"] = v.perplexity
            if let seq = v.sequenceAccuracy { o["sequence_accuracy"] = seq }
            if let bleu = v.bleu { o["valid_bleu"] = bleu }
        }
        o["best_metric"] = config.bestMetric.rawValue
        o["early_stopped"] = stoppedEarly
        if let best = s.best {
            o["best_step"] = best.step
            o["best_value"] = best.value
            // A best whose checkpoint could not be written (disk full) has none to name.
            let directory = checkpoint.store.checkpointsDirectory + "/" + best.checkpointName
            o["best_checkpoint"] = Posix.isDirectory(directory) ? directory : NSNull()
        }
        do { try log.writeSummary(o) } catch  where checkpointFailure != nil {
            printError("error: \(error)")  // The checkpoint failure below is the one to act on.
        }
        say("summary: \(options.runDirectory.path)/summary.json")
        // A run whose last checkpoint is missing must not look like a success to scripts.
        if let failure = checkpointFailure {
            throw TrainingError.checkpointNotWritten("\(failure); \(lastCheckpointDescription)")
        }
        return s
    }
}
