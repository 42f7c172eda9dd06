#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sums over the non-pad target tokens of one or more batches. Sums (not means) so that
/// micro-batches and workers combine exactly; divide by `tokens` at the end.
package struct LossStatistics: Sendable, Equatable {
    /// Sum of label-smoothed token losses (what training minimises).
    package var lossSum: Double
    /// Sum of unsmoothed negative log-likelihoods (what validation reports).
    package var nllSum: Double
    /// Number of non-pad target tokens.
    package var tokens: Int
    /// Number of tokens whose highest logit is the target.
    package var correct: Int

    package init(lossSum: Double = 0, nllSum: Double = 0, tokens: Int = 0, correct: Int = 0) {
        self.lossSum = lossSum
        self.nllSum = nllSum
        self.tokens = tokens
        self.correct = correct
    }

    package static let zero = LossStatistics()

    package static func + (a: LossStatistics, b: LossStatistics) -> LossStatistics {
        LossStatistics(
            lossSum: a.lossSum + b.lossSum, nllSum: a.nllSum + b.nllSum,
            tokens: a.tokens + b.tokens, correct: a.correct + b.correct)
    }

    package static func += (a: inout LossStatistics, b: LossStatistics) { a = a + b }

    /// Mean smoothed loss per token (0 when there are no tokens).
    package var meanLoss: Double { tokens > 0 ? lossSum / Double(tokens) : 0 }
    /// Mean unsmoothed NLL per token (0 when there are no tokens).
    package var meanNLL: Double { tokens > 0 ? nllSum / Double(tokens) : 0 }
    /// `exp(meanNLL)`.
    package var perplexity: Double { exp(meanNLL) }
    /// Fraction of tokens predicted correctly (0 when there are no tokens).
    package var tokenAccuracy: Double { tokens > 0 ? Double(correct) / Double(tokens) : 0 }
}
