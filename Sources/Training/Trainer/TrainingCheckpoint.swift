import Foundation
import TensorCore
import TransformerModel

/// The counters a checkpoint restores besides tensors.
package struct TrainingProgress: Sendable, Equatable {
    /// Training steps taken (applied or skipped).
    package var step = 0
    /// Next global micro-batch index: global, so a run may resume with another worker count.
    package var dataCursor = 0
    package var skippedSteps = 0
    package var targetTokensSeen = 0
    package var elapsedSeconds = 0.0
    package init() {}
}

/// Saves and restores a run: weights (`model.safetensors`, PyTorch names), AdamW moments
/// (`optimizer.safetensors`, `exp_avg.<name>` and `exp_avg_sq.<name>`) and `state.json`.
package struct TrainingCheckpoint {
    package let store: CheckpointStore
    package let config: RunConfig

    package init(runDirectory: URL, config: RunConfig) {
        store = CheckpointStore(runDirectory: runDirectory.path)
        self.config = config
    }

    /// `extraState` adds fields to `state.json` (the best validation); `preserving` lists steps
    /// whose checkpoints `keep_checkpoints` must not delete (the best one).
    @discardableResult
    package func save(
        progress p: TrainingProgress, parameters: UnsafePointer<Float>, optimizer: OptimizerStep,
        workers: Int, lossScale: LossScaleState, tokenizerHash: String,
        extraState: [String: Any] = [:], preserving: Set<Int> = []
    ) throws -> WrittenCheckpoint {
        let layout = ParameterLayout(config: config.model)
        let configObject = (try? JSONSerialization.jsonObject(with: config.rawJSON)) ?? [String: Any]()
        var state: [String: Any] = [
            "step": p.step,
            "optimizer_step": optimizer.adam.step,
            "skipped_steps": p.skippedSteps,
            "data_cursor": p.dataCursor,
            "target_tokens_seen": p.targetTokensSeen,
            "elapsed_seconds": p.elapsedSeconds,
            "workers": workers,
            "config": configObject,
            "config_hash": config.configHash,
            "tokenizer_hash": tokenizerHash,
            // Every random draw is Philox(seed) at a counter built from (step, micro-batch, site) or
            // (stream, position): the seed and the step/cursor above are the whole RNG state.
            "rng": ["algorithm": "philox4x32-10", "seed": String(config.training.seed)],
            "loss_scale": lossScale.jsonObject,
        ]
        for (key, value) in extraState { state[key] = value }
        let m = optimizer.adam.m.pointer, v = optimizer.adam.v.pointer
        return try store.write(
            step: p.step, model: layout.float32Records(arena: parameters),
            optimizer: layout.float32Records(arena: m, prefix: "exp_avg.")
                + layout.float32Records(arena: v, prefix: "exp_avg_sq."),
            state: state, keep: config.training.keepCheckpoints, preserving: preserving)
    }

    /// Finds the checkpoint to resume from: `directory`, or the newest valid one of the run.
    /// Returns nil for a fresh run; prints every checkpoint it had to pass over.
    package func find(directory: String?) throws -> LoadedCheckpoint? {
        if let directory { return try CheckpointStore.load(directory: directory) }
        let search = try store.latestValid()
        for s in search.skipped { printError("warning: skipping \(s)") }
        return search.checkpoint
    }

    /// Loads weights and moments into the given buffers and returns the counters.
    package func restore(
        _ c: LoadedCheckpoint, parameters: UnsafeMutablePointer<Float>, optimizer: OptimizerStep,
        lossScale: inout LossScaleState
    ) throws -> TrainingProgress {
        let layout = ParameterLayout(config: config.model)
        let state = try c.stateObject()
        if state[CheckpointAveraging.sourcesKey] != nil {
            throw TrainingError.resume(
                "\(c.directory) is an average of checkpoints (made by `transformer average`) and "
                    + "holds no optimizer moments or data position; use it with translate or evaluate, and resume from one "
                    + "of the checkpoints it averages")
        }
        if let saved = state["config"] {
            let savedConfig = try RunConfig.parse(jsonObject: saved, source: c.directory + "/state.json")
            guard savedConfig.model == config.model else {
                throw TrainingError.resume(
                    "\(c.directory) was written for a different model (\(savedConfig.model)) than the config (\(config.model))"
                )
            }
        }
        try c.model.read(layout: layout, into: parameters)
        try c.optimizer.read(layout: layout, into: optimizer.adam.m.pointer, prefix: "exp_avg.")
        try c.optimizer.read(layout: layout, into: optimizer.adam.v.pointer, prefix: "exp_avg_sq.")
        func int(_ key: String) throws -> Int {
            guard let n = state[key] as? NSNumber else {
                throw TrainingError.resume("\(c.directory)/state.json: missing \(key)")
            }
            return n.intValue
        }
        var p = TrainingProgress()
        p.step = try int("step")
        p.dataCursor = try int("data_cursor")
        p.skippedSteps = try int("skipped_steps")
        p.targetTokensSeen = (state["target_tokens_seen"] as? NSNumber)?.intValue ?? 0
        p.elapsedSeconds = (state["elapsed_seconds"] as? NSNumber)?.doubleValue ?? 0
        optimizer.restore(optimizerSteps: try int("optimizer_step"), skippedSteps: p.skippedSteps)
        if let ls = state["loss_scale"] as? [String: Any] {
            let saved = try LossScaleState(jsonObject: ls, source: c.directory + "/state.json")
            // A run that switches Float16 gradients on or off keeps the fresh state of its config.
            if saved.isDynamic == lossScale.isDynamic { lossScale = saved }
        }
        return p
    }
}

/// Writes a line to standard output at once (unbuffered: progress shows up in pipes and log files).
/// A line that cannot be written (output redirected to a full disk) is dropped: it must not stop
/// the run.
package func printLine(_ message: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((message + "\n").utf8))
}

/// Writes a line to standard error (dropped if it cannot be written, like `printLine`).
package func printError(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data((message + "\n").utf8))
}
