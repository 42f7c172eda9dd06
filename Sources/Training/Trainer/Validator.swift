import TensorCore
import TransformerModel

/// Validation metrics of one evaluation pass.
public struct ValidationResult: Sendable, Equatable {
    /// Unsmoothed mean negative log-likelihood per non-pad target token.
    public var loss: Double
    public var perplexity: Double
    public var tokenAccuracy: Double
    /// Fraction of sequences decoded greedily exactly right (toy tasks only).
    public var sequenceAccuracy: Double?
    /// Corpus BLEU of decoded translations on a validation sample (translation only, when computed).
    public var bleu: Double?
}

/// Teacher-forced loss and accuracy in evaluation mode (no dropout), plus greedy decoding for
/// the toy tasks.
public struct Validator {
    public let pairs: [(source: [Int32], target: [Int32])]
    public let decode: Bool
    public var batchSize = 128

    public init(pairs: [(source: [Int32], target: [Int32])], decode: Bool) {
        self.pairs = pairs; self.decode = decode
    }

    public func run(_ model: Transformer) throws -> ValidationResult {
        var stats = LossStatistics.zero
        var exact = 0
        var start = 0
        // One decoder for all chunks: its incremental caches are reused, not rebuilt per chunk.
        let decoder = decode ? GreedyDecoder(model: model) : nil
        while start < pairs.count {
            let chunk = Array(pairs[start..<Swift.min(pairs.count, start + batchSize)])
            start += chunk.count
            let batch = Batch(pairs: chunk)
            let logits = try model.forward(source: batch.source, targetInput: batch.targetInput, batchSize: batch.batchSize,
                                           sourceLength: batch.sourceLength, targetLength: batch.targetLength,
                                           dropout: .disabled)
            stats += batch.targetOutput.withUnsafeBufferPointer { t in
                LabelSmoothedCrossEntropy.evaluate(logits: logits, targets: t.baseAddress!,
                                                   rows: batch.batchSize * batch.targetLength,
                                                   vocab: model.config.vocabSize, smoothing: 0, gradientScale: nil)
            }
            if let decoder {
                let longest = chunk.map(\.target.count).max() ?? 0
                let outputs = try decoder.decode(chunk.map(\.source), maxLength: Swift.min(model.config.maxLen, longest + 1))
                for (o, p) in zip(outputs, chunk) where o == p.target { exact += 1 }
            }
        }
        return ValidationResult(loss: stats.meanNLL, perplexity: stats.perplexity, tokenAccuracy: stats.tokenAccuracy,
                                sequenceAccuracy: decode ? Double(exact) / Double(Swift.max(1, pairs.count)) : nil)
    }
}
