import Foundation

/// The learning-rate schedule (`training.schedule`).
public enum ScheduleKind: String, Sendable, Equatable, CaseIterable {
    /// The paper's: `lr_factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)`, step from 1.
    case noam
    /// Linear warmup to a peak, then cosine decay to zero at `max_steps`. JSON `"warmup_cosine"`.
    case warmupCosine = "warmup_cosine"
}

/// The validation figure that decides the best checkpoint and early stopping (`training.best_metric`).
public enum BestMetric: String, Sendable, Equatable, CaseIterable {
    /// Validation loss (teacher-forced mean NLL); lower is better. Computed at every validation.
    case loss
    /// Corpus BLEU of the validation sample (translation only); higher is better.
    case bleu
    /// Corpus chrF of the validation sample (translation only); higher is better.
    case chrf

    /// True for BLEU and chrF, false for the loss.
    public var higherIsBetter: Bool { self != .loss }

    /// Whether `candidate` beats `best` (strictly: a tie is no improvement).
    public func improves(_ candidate: Double, on best: Double) -> Bool {
        higherIsBetter ? candidate > best : candidate < best
    }
}

/// Which tensors are stored as Float16 (`training.float16`). Compute and master weights stay Float32.
public struct Float16Options: Sendable, Equatable {
    /// Model parameters used in forward/backward (and weights broadcast by the coordinator).
    public var parameters: Bool
    /// Activations stashed for the backward pass.
    public var activations: Bool
    /// Gradients sent over the wire.
    public var gradients: Bool

    /// All off by default: everything Float32.
    public init(parameters: Bool = false, activations: Bool = false, gradients: Bool = false) {
        self.parameters = parameters
        self.activations = activations
        self.gradients = gradients
    }

    /// Everything in Float32 (the default).
    public static let none = Float16Options()
    /// Parameters, activations and gradients all in Float16.
    public static let all = Float16Options(parameters: true, activations: true, gradients: true)

    /// True when anything is stored as Float16.
    public var any: Bool { parameters || activations || gradients }

    /// Parses a command-line value: `none`, `all`, or a comma-separated list of `parameters`,
    /// `activations`, `gradients` (e.g. `--float16 parameters,gradients`).
    public static func parse(_ text: String) throws -> Float16Options {
        let source = "--float16"
        switch text {
        case "none": return .none
        case "all": return .all
        default: break
        }
        var options = Float16Options()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch part.trimmingCharacters(in: .whitespaces) {
            case "parameters": options.parameters = true
            case "activations": options.activations = true
            case "gradients": options.gradients = true
            default:
                throw ConfigError.invalid(
                    source: source, keyPath: "",
                    message:
                        "\"\(part)\" is not one of none, all, parameters, activations, gradients")
            }
        }
        return options
    }
}

/// Optimisation, schedule, batching and bookkeeping (`training` in the config file). Defaults
/// listed here are what the loader uses when a key is absent.
public struct TrainingConfig: Sendable, Equatable {
    /// `batch_tokens` (required): tokens in one micro-batch on one worker. The global batch of a
    /// step is `batchTokens * accumulationSteps * workers`. Must be at least `model.max_len`.
    public var batchTokens: Int
    /// `accumulation_steps` (default 1): micro-batches summed per worker before each step.
    public var accumulationSteps: Int
    /// `max_steps` (required): optimizer steps of the run.
    public var maxSteps: Int
    /// `schedule` (default `"noam"`).
    public var schedule: ScheduleKind
    /// `lr_factor` (default 1.0, > 0): scale of the schedule's learning rate.
    public var lrFactor: Float
    /// `warmup_steps` (default 4000; >= 1 for noam, >= 0 for warmup_cosine).
    public var warmupSteps: Int
    /// `betas[0]` (default 0.9, in [0, 1)).
    public var beta1: Float
    /// `betas[1]` (default 0.98, in [0, 1)).
    public var beta2: Float
    /// `eps` (default 1e-9, > 0): AdamW's denominator term.
    public var eps: Float
    /// `weight_decay` (default 0.01, >= 0): decoupled decay, applied to matrices only.
    public var weightDecay: Float
    /// `clip_norm` (default 1.0, >= 0): global gradient-norm limit; 0 turns clipping off.
    public var clipNorm: Float
    /// `label_smoothing` (default 0.1, in [0, 1)).
    public var labelSmoothing: Float
    /// `seed` (default 1): every random choice of the run derives from it.
    public var seed: UInt64
    /// `validate_every` (default 100, >= 1): steps between validations.
    public var validateEvery: Int
    /// `checkpoint_every` (default 1000, >= 1): steps between checkpoints.
    public var checkpointEvery: Int
    /// `keep_checkpoints` (default 3, >= 1): how many checkpoints stay on disk.
    public var keepCheckpoints: Int
    /// `activation_checkpointing` (default false): recompute activations in backward.
    public var activationCheckpointing: Bool
    /// `float16` (default all false): an object `{"parameters", "activations", "gradients"}`
    /// (absent members false), or `true` / `false` for all three.
    public var float16: Float16Options
    /// `log_every` (default 10, >= 1): steps between lines of `metrics.jsonl`.
    public var logEvery: Int
    /// `valid_size` (default 500, >= 1): held-out sequences of the toy tasks (unused for translation).
    public var validSize: Int
    /// `best_metric` as written; nil (the key absent) means the task's default, `bleu` for
    /// translation with `data.bleu_every` >= 1 and `loss` otherwise. `RunConfig.bestMetric` is the
    /// resolved value. `bleu` and `chrf` need the translation task with `bleu_every` >= 1.
    public var bestMetric: BestMetric?
    /// `patience` (default 0, >= 0): stop after this many consecutive validations that report the
    /// best metric without improving it; 0 never stops early.
    public var patience: Int

    /// The AdamW betas as a pair.
    public var betas: (Float, Float) { (beta1, beta2) }

    /// A training section with the config loader's defaults; it does not validate (`RunConfig.parse` does).
    public init(
        batchTokens: Int, accumulationSteps: Int = 1, maxSteps: Int, schedule: ScheduleKind = .noam,
        lrFactor: Float = 1.0, warmupSteps: Int = 4000, beta1: Float = 0.9, beta2: Float = 0.98,
        eps: Float = 1e-9, weightDecay: Float = 0.01, clipNorm: Float = 1.0, labelSmoothing: Float = 0.1,
        seed: UInt64 = 1, validateEvery: Int = 100, checkpointEvery: Int = 1000, keepCheckpoints: Int = 3,
        activationCheckpointing: Bool = false, float16: Float16Options = .none, logEvery: Int = 10,
        validSize: Int = 500, bestMetric: BestMetric? = nil, patience: Int = 0
    ) {
        self.batchTokens = batchTokens
        self.accumulationSteps = accumulationSteps
        self.maxSteps = maxSteps
        self.schedule = schedule
        self.lrFactor = lrFactor
        self.warmupSteps = warmupSteps
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.labelSmoothing = labelSmoothing
        self.seed = seed
        self.validateEvery = validateEvery
        self.checkpointEvery = checkpointEvery
        self.keepCheckpoints = keepCheckpoints
        self.activationCheckpointing = activationCheckpointing
        self.float16 = float16
        self.logEvery = logEvery
        self.validSize = validSize
        self.bestMetric = bestMetric
        self.patience = patience
    }
}
