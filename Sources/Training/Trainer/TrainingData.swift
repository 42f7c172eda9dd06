import TransformerModel

/// Where micro-batches and validation pairs come from. Micro-batch `index` is a pure function of
/// the index (and the run's seed), so any worker can compute any micro-batch and a resumed run
/// continues exactly where the data cursor points.
package protocol TrainingData: Sendable {
    func microBatch(index: Int) -> Batch
    /// Held-out pairs (source, target without BOS/EOS).
    var validationPairs: [(source: [Int32], target: [Int32])] { get }
    /// True for copy/reverse, where validation also decodes and reports sequence accuracy.
    var reportsSequenceAccuracy: Bool { get }
    /// Identifies the tokenizer (empty for toy tasks); part of the handshake and checkpoints.
    var tokenizerHash: String { get }
    /// Validation sources whose greedy translations are scored (e.g. BLEU on a sample); empty
    /// when the task scores none.
    var scoredSources: [[Int32]] { get }
    /// The scored sources are translated at every `scoreEvery`-th validation and at the last
    /// step; 0 never.
    var scoreEvery: Int { get }
    /// Figures logged in `valid.jsonl` from the greedy translations of `scoredSources`, in order
    /// (e.g. `bleu`, `chrf`).
    func score(translations: [[Int32]]) -> [String: Double]
    /// What was loaded and skipped, printed when a run starts (nil: nothing to say).
    var loadReport: String? { get }
}

extension TrainingData {
    package var scoredSources: [[Int32]] { [] }
    package var scoreEvery: Int { 0 }
    package func score(translations: [[Int32]]) -> [String: Double] { [:] }
    package var loadReport: String? { nil }
}

/// The copy and reverse tasks of SPEC.md.
package struct ToyTrainingData: TrainingData {
    package let task: ToyTask
    package let tokenBudget: Int
    package let validationPairs: [(source: [Int32], target: [Int32])]
    package var reportsSequenceAccuracy: Bool { true }
    package var tokenizerHash: String { "" }

    package init(config: RunConfig) throws {
        let kind: ToyTask.Kind
        switch config.data.task {
        case .copy: kind = .copy
        case .reverse: kind = .reverse
        case .translation: throw TrainingError.unsupported("data.task translation is not available yet")
        }
        task = try ToyTask(
            kind: kind, vocabSize: config.model.vocabSize, maxLength: config.data.copyMaxLen,
            minLength: config.data.copyMinLen,
            seed: config.training.seed)
        tokenBudget = config.training.batchTokens
        validationPairs = task.validationSet(count: config.training.validSize)
    }

    package func microBatch(index: Int) -> Batch { task.microBatch(index: index, tokenBudget: tokenBudget) }
}

/// Builds the data source a config asks for.
package func makeTrainingData(_ config: RunConfig) throws -> any TrainingData {
    config.data.task.isToy ? try ToyTrainingData(config: config) : try TranslationData(config: config)
}
