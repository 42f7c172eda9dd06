#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sums over the non-pad target tokens of one or more batches. Sums (not means) so that
/// micro-batches and workers combine exactly; divide by `tokens` at the end.
public struct LossStatistics: Sendable, Equatable {
    /// Sum of label-smoothed token losses (what training minimises).
    public var lossSum: Double
    /// Sum of unsmoothed negative log-likelihoods (what validation reports).
    public var nllSum: Double
    /// Number of non-pad target tokens.
    public var tokens: Int
    /// Number of tokens whose highest logit is the target.
    public var correct: Int

    public init(lossSum: Double = 0, nllSum: Double = 0, tokens: Int = 0, correct: Int = 0) {
        self.lossSum = lossSum
        self.nllSum = nllSum
        self.tokens = tokens
        self.correct = correct
    }

    public static let zero = LossStatistics()

    public static func + (a: LossStatistics, b: LossStatistics) -> LossStatistics {
        LossStatistics(lossSum: a.lossSum + b.lossSum, nllSum: a.nllSum + b.nllSum,
                       tokens: a.tokens + b.tokens, correct: a.correct + b.correct)
    }

    public static func += (a: inout LossStatistics, b: LossStatistics) { a = a + b }

    /// Mean smoothed loss per token (0 when there are no tokens).
    public var meanLoss: Double { tokens > 0 ? lossSum / Double(tokens) : 0 }
    /// Mean unsmoothed NLL per token (0 when there are no tokens).
    public var meanNLL: Double { tokens > 0 ? nllSum / Double(tokens) : 0 }
    /// `exp(meanNLL)`.
    public var perplexity: Double { exp(meanNLL) }
    /// Fraction of tokens predicted correctly (0 when there are no tokens).
    public var tokenAccuracy: Double { tokens > 0 ? Double(correct) / Double(tokens) : 0 }
}
