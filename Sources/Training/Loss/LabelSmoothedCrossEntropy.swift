import CKernels
import TensorCore
import TransformerModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Cross-entropy with label smoothing, defined exactly as PyTorch's
/// `F.cross_entropy(logits, y, label_smoothing: eps, ignore_index: PAD, reduction: "sum")`:
/// per token `(1-eps) * -log p[y] + eps * mean over all V classes of -log p[c]`; pad targets
/// contribute nothing.
package enum LabelSmoothedCrossEntropy {
    /// Rows per work block. Blocks are fixed and their sums are added in block order, so the
    /// statistics do not depend on the thread count.
    static let blockRows = 8

    /// Evaluates the summed loss over `rows` rows of `vocab` logits (row-major).
    ///
    /// When `gradientScale` is given, `logits` is overwritten with
    /// `gradientScale * d(lossSum)/d(logits)` = `scale * (softmax - ((1-eps) onehot + eps/V))`,
    /// zero rows for pad targets; otherwise `logits` is left as it was. A row with a non-finite
    /// logit yields a NaN loss (and a NaN gradient row), so the trainer sees and skips the step.
    /// Targets must lie in `0..<vocab` (0 is PAD).
    package static func evaluate(
        logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, rows: Int,
        vocab: Int, smoothing: Float, gradientScale: Float?
    ) -> LossStatistics {
        precondition(vocab > 0 && rows >= 0, "cross-entropy needs vocab > 0 and rows >= 0")
        let blocks = (rows + blockRows - 1) / blockRows
        guard blocks > 0 else { return .zero }
        return withUnsafeTemporaryAllocation(of: LossStatistics.self, capacity: blocks) { partial in
            let partial = partial.baseAddress.unsafelyUnwrapped
            Parallel.rows(blocks, costPerRow: blockRows * vocab * 40) { range in
                for b in range {
                    var stats = LossStatistics.zero
                    for r in (b * blockRows)..<Swift.min(rows, (b + 1) * blockRows) {
                        let target = Int(targets[r])
                        precondition(target >= 0 && target < vocab, "target id \(target) outside 0..<\(vocab)")
                        stats += row(
                            logits + r * vocab, target: target, vocab: vocab, smoothing: smoothing,
                            gradientScale: gradientScale)
                    }
                    (partial + b).initialize(to: stats)
                }
            }
            var total = LossStatistics.zero
            for b in 0..<blocks { total += partial[b] }
            return total
        }
    }

    /// One token: loss, NLL and correctness of row `z`; optionally its scaled gradient in place.
    @inline(__always)
    static func row(
        _ z: UnsafeMutablePointer<Float>, target: Int, vocab: Int, smoothing: Float,
        gradientScale: Float?
    ) -> LossStatistics {
        if target == Int(SpecialTokens.pad) {
            if gradientScale != nil { z.update(repeating: 0, count: vocab) }
            return .zero
        }
        // Pass 1: max (for a stable softmax) and the plain sum of logits (for the smoothing term).
        var maxLogit: Float = 0, logitSum: Float = 0
        ckernels_max_and_sum(z, Int64(vocab), &maxLogit, &logitSum)
        guard logitSum.isFinite && maxLogit.isFinite else {
            if gradientScale != nil { z.update(repeating: .nan, count: vocab) }
            return LossStatistics(lossSum: .nan, nllSum: .nan, tokens: 1, correct: 0)
        }
        // First index holding the maximum, as torch.argmax reports it.
        let argmax = Int(ckernels_first_index_of(z, Int64(vocab), maxLogit))
        let targetLogit = z[target]

        // Pass 2: sum of exp(z - max), storing the exponentials when a gradient is wanted.
        let expSum = ckernels_exp_sum(z, Int64(vocab), maxLogit, gradientScale != nil ? z : nil)

        let eps = Double(smoothing)
        let logPartition = Double(maxLogit) + log(Double(expSum))
        let nll = logPartition - Double(targetLogit)
        let meanNegativeLogProbability = logPartition - Double(logitSum) / Double(vocab)
        let loss = (1 - eps) * nll + eps * meanNegativeLogProbability

        if let scale = gradientScale {
            // Pass 3: z = scale * (e / expSum - eps/V), then the one-hot part at the target.
            ckernels_scale_shift(z, Int64(vocab), scale / expSum, scale * smoothing / Float(vocab))
            z[target] -= scale * (1 - smoothing)
        }
        return LossStatistics(lossSum: loss, nllSum: nll, tokens: 1, correct: argmax == target ? 1 : 0)
    }
}
