import TensorCore
import TransformerModel

/// Validation metrics of one evaluation pass.
public struct ValidationResult: Sendable, Equatable {
    /// Unsmoothed mean negative log-likelihood per non-pad target token.
    public var loss: Double
    /// `exp(loss)`.
    public var perplexity: Double
    /// Fraction of non-pad target tokens whose teacher-forced argmax is right.
    public var tokenAccuracy: Double
    /// Fraction of sequences decoded greedily exactly right (toy tasks only).
    public var sequenceAccuracy: Double?
    /// Corpus BLEU of decoded translations on a validation sample (translation only, when computed).
    public var bleu: Double?
}

/// Teacher-forced loss and accuracy in evaluation mode (no dropout), plus greedy decoding for
/// the toy tasks: a whole `ValidationWork` without scored translations, computed here.
package struct Validator {
    package let pairs: [(source: [Int32], target: [Int32])]
    package let decode: Bool

    package init(pairs: [(source: [Int32], target: [Int32])], decode: Bool) {
        self.pairs = pairs
        self.decode = decode
    }

    package func run(_ model: Transformer) throws -> ValidationResult {
        let work = ValidationWork(pairs: pairs, decodesPairs: decode, translating: [], maxLen: model.config.maxLen)
        return work.combine(try work.computeAll(model: model)).result
    }
}
