/// What the model is trained on (`data.task`).
public enum TaskKind: String, Sendable, Equatable, CaseIterable {
    /// Target = source; source symbols uniform in [4, vocab_size), length uniform in [1, copy_max_len].
    case copy
    /// Target = reversed source.
    case reverse
    /// Parallel text from TSV files (source TAB target) with a trained tokenizer.
    case translation

    /// The synthetic tasks that need no files.
    public var isToy: Bool { self != .translation }
}

/// The training data (`data` in the config file).
///
/// Toy tasks take `copy_max_len` (required) and no paths; `translation` takes `train`, `valid` and
/// `tokenizer` (all required) and no `copy_max_len`. Paths are kept as written; relative ones are
/// resolved against the current directory by whoever opens them (not checked at load time, so a
/// config can be loaded on a host that does not hold the files).
public struct DataConfig: Sendable, Equatable {
    /// What the model is trained on (`data.task`).
    public var task: TaskKind
    /// Longest toy source sequence (>= 1, and `copy_max_len + 2 <= model.max_len` because the
    /// target gets BOS/EOS). 0 for translation.
    public var copyMaxLen: Int
    /// Shortest toy source (`copy_min_len`, default 1, at most `copy_max_len`); equal to
    /// `copy_max_len` gives fixed-shape batches for benchmarks.
    public var copyMinLen: Int = 1
    /// TSV of training pairs; non-nil exactly when `task == .translation`.
    public var train: String?
    /// TSV of validation pairs; non-nil exactly when `task == .translation`.
    public var valid: String?
    /// Tokenizer file; non-nil exactly when `task == .translation`.
    public var tokenizer: String?
    /// Translation: BLEU is computed (greedy decoding of `bleuSample` validation pairs) at every
    /// `bleuEvery`-th validation and at the last step; 0 turns it off. Default 1.
    public var bleuEvery: Int
    /// Translation: how many validation pairs (the first ones of the valid file) BLEU decodes. Default 500.
    public var bleuSample: Int

    /// A data section as the config loader builds it; it does not validate (`RunConfig.parse` does).
    public init(
        task: TaskKind, copyMaxLen: Int = 0, train: String? = nil, valid: String? = nil, tokenizer: String? = nil,
        bleuEvery: Int = 1, bleuSample: Int = 500
    ) {
        self.task = task
        self.copyMaxLen = copyMaxLen
        self.train = train
        self.valid = valid
        self.tokenizer = tokenizer
        self.bleuEvery = bleuEvery
        self.bleuSample = bleuSample
    }

    /// A copy or reverse task.
    public static func toy(_ task: TaskKind, copyMaxLen: Int, copyMinLen: Int = 1) -> DataConfig {
        var d = DataConfig(task: task, copyMaxLen: copyMaxLen)
        d.copyMinLen = copyMinLen
        return d
    }

    /// A translation task.
    public static func translation(
        train: String, valid: String, tokenizer: String, bleuEvery: Int = 1, bleuSample: Int = 500
    ) -> DataConfig {
        DataConfig(
            task: .translation, train: train, valid: valid, tokenizer: tokenizer, bleuEvery: bleuEvery,
            bleuSample: bleuSample)
    }
}
