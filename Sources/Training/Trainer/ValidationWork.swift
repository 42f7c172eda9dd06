import TensorCore
import TransformerModel

/// One validation pass cut into units that any process holding the step's weights computes alone.
///
/// Units `0..<lossUnitCount` are fixed chunks of `chunkPairs` validation pairs: teacher-forced
/// loss and token accuracy (and, for the toy tasks, how many greedy decodes are exact). The units
/// after them are the batches in which the scored sources are translated greedily (BLEU, chrF),
/// planned as `TextTranslator` plans them. Every unit is a pure function of its index and the
/// weights, and `combine` adds the units' results in unit order, so a validation split over
/// workers gives the bits of a single-process one whoever computed which unit.
package struct ValidationWork: Sendable {
    /// Validation pairs per loss unit (also the batch of the forward pass).
    package static let chunkPairs = 128
    /// Scored sources decoded together (as `TextTranslator`'s default).
    package static let translationBatchSize = 64

    package let pairs: [(source: [Int32], target: [Int32])]
    /// True for the toy tasks: each loss unit also decodes its pairs greedily.
    package let decodesPairs: Bool
    package let translationBatches: [TranslationBatch]
    /// How many sources the translation units translate in all.
    package let translationCount: Int

    package var lossUnitCount: Int { (pairs.count + Self.chunkPairs - 1) / Self.chunkPairs }
    package var unitCount: Int { lossUnitCount + translationBatches.count }

    /// - Parameters:
    ///   - translating: the scored sources, or [] when this validation scores no translations.
    ///   - maxLen: the model's `max_len` (sources are cut to it, as `TextTranslator` does).
    package init(
        pairs: [(source: [Int32], target: [Int32])], decodesPairs: Bool, translating sources: [[Int32]], maxLen: Int
    ) {
        self.pairs = pairs
        self.decodesPairs = decodesPairs
        translationBatches = TextTranslator.batches(of: sources, maxLen: maxLen, batchSize: Self.translationBatchSize)
        translationCount = sources.count
    }

    /// The work of the validation of `data` that scores translations or not (see `TrainingSession.validationWork`).
    package init(data: any TrainingData, translating: Bool, maxLen: Int) {
        self.init(
            pairs: data.validationPairs, decodesPairs: data.reportsSequenceAccuracy,
            translating: translating ? data.scoredSources : [], maxLen: maxLen)
    }

    /// Computes unit `unit` with `model` (evaluation mode). `decoder` is reused across units when
    /// given (its caches stay allocated); one is made when needed otherwise.
    package func compute(unit: Int, model: Transformer, decoder: GreedyDecoder? = nil) throws -> ValidationPart {
        precondition(unit >= 0 && unit < unitCount, "validation unit \(unit) outside 0..<\(unitCount)")
        if unit >= lossUnitCount {
            let batch = translationBatches[unit - lossUnitCount]
            let greedy = decoder ?? GreedyDecoder(model: model)
            return .translations(try greedy.decode(batch.sources, maxLength: batch.outputBudget))
        }
        let start = unit * Self.chunkPairs
        let chunk = Array(pairs[start..<Swift.min(pairs.count, start + Self.chunkPairs)])
        let batch = Batch(pairs: chunk)
        let logits = try model.forward(
            source: batch.source, targetInput: batch.targetInput, batchSize: batch.batchSize,
            sourceLength: batch.sourceLength, targetLength: batch.targetLength,
            dropout: .disabled)
        let stats = batch.targetOutput.withUnsafeBufferPointer { t in
            LabelSmoothedCrossEntropy.evaluate(
                logits: logits, targets: t.baseAddress!,
                rows: batch.batchSize * batch.targetLength,
                vocab: model.config.vocabSize, smoothing: 0, gradientScale: nil)
        }
        var exact = 0
        if decodesPairs {
            let greedy = decoder ?? GreedyDecoder(model: model)
            let longest = chunk.map(\.target.count).max() ?? 0
            let outputs = try greedy.decode(chunk.map(\.source), maxLength: Swift.min(model.config.maxLen, longest + 1))
            for (o, p) in zip(outputs, chunk) where o == p.target { exact += 1 }
        }
        return .loss(stats, exact: exact)
    }

    /// Why `part` cannot be unit `unit`'s result (nil when it can): the right kind, counts within
    /// the unit's pairs, one translation per source of its batch within its budget, token ids
    /// below `vocab`. Results from other processes are checked with it before they are combined.
    package func problem(with part: ValidationPart, unit: Int, vocab: Int) -> String? {
        guard unit >= 0 && unit < unitCount else { return "unit \(unit) is outside 0..<\(unitCount)" }
        switch part {
        case let .loss(stats, exact):
            guard unit < lossUnitCount else { return "unit \(unit) is a translation batch, not a loss chunk" }
            let start = unit * Self.chunkPairs
            let chunk = Array(pairs[start..<Swift.min(pairs.count, start + Self.chunkPairs)])
            let tokens = Batch(pairs: chunk).targetOutput.reduce(0) { $0 + ($1 == SpecialTokens.pad ? 0 : 1) }
            guard stats.tokens == tokens else {
                return "loss unit \(unit) counts \(stats.tokens) target tokens; it has \(tokens)"
            }
            guard stats.correct >= 0, stats.correct <= tokens else {
                return "loss unit \(unit) has \(stats.correct) correct of \(tokens) tokens"
            }
            guard exact >= 0, exact <= (decodesPairs ? chunk.count : 0) else {
                return "loss unit \(unit) has \(exact) exact decodes of \(chunk.count)"
            }
        case .translations(let outputs):
            guard unit >= lossUnitCount else { return "unit \(unit) is a loss chunk, not a translation batch" }
            let batch = translationBatches[unit - lossUnitCount]
            guard outputs.count == batch.sources.count else {
                return "translation unit \(unit) has \(outputs.count) translations for \(batch.sources.count) sources"
            }
            for output in outputs {
                guard output.count <= batch.outputBudget else {
                    return
                        "translation unit \(unit) has a translation of \(output.count) tokens (budget \(batch.outputBudget))"
                }
                if let bad = output.first(where: { $0 < 0 || Int($0) >= vocab }) {
                    return "translation unit \(unit) has token id \(bad) outside 0..<\(vocab)"
                }
            }
        }
        return nil
    }

    /// Adds the results of all units in unit order. `parts[u]` is unit `u`'s result.
    package func combine(_ parts: [ValidationPart]) -> (result: ValidationResult, translations: [[Int32]]) {
        precondition(parts.count == unitCount, "\(parts.count) validation results for \(unitCount) units")
        var stats = LossStatistics.zero
        var exact = 0
        var translations = [[Int32]](repeating: [], count: translationCount)
        for (unit, part) in parts.enumerated() {
            switch part {
            case let .loss(s, e):
                stats += s
                exact += e
            case .translations(let outputs):
                let batch = translationBatches[unit - lossUnitCount]
                for (k, i) in batch.indices.enumerated() where k < outputs.count { translations[i] = outputs[k] }
            }
        }
        let result = ValidationResult(
            loss: stats.meanNLL, perplexity: stats.perplexity, tokenAccuracy: stats.tokenAccuracy,
            sequenceAccuracy: decodesPairs ? Double(exact) / Double(Swift.max(1, pairs.count)) : nil)
        return (result, translations)
    }

    /// Computes every unit here, one after the other (the single-process validation).
    package func computeAll(model: Transformer) throws -> [ValidationPart] {
        // One decoder for all units: its incremental caches are reused, not rebuilt per unit.
        let decoder = decodesPairs || !translationBatches.isEmpty ? GreedyDecoder(model: model) : nil
        return try (0..<unitCount).map { try compute(unit: $0, model: model, decoder: decoder) }
    }
}

/// What one validation unit yields.
package enum ValidationPart: Sendable, Equatable {
    /// A loss chunk: its loss statistics and how many of its pairs decoded exactly (toy tasks).
    case loss(LossStatistics, exact: Int)
    /// A translation batch: the greedy translation of each of its sources, in batch order.
    case translations([[Int32]])
}
