import TensorCore

/// Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_` (L2 norm over all
/// gradients together, `coef = maxNorm / (norm + 1e-6)`, applied only when `coef < 1`).
package enum GradientClipping {
    /// Elements per block of the norm's sum. The blocks are fixed, and their partial sums are
    /// added in block order, so the norm does not depend on the thread count.
    static let blockSize = 1 << 16

    /// The L2 norm of `count` values, accumulated in Double.
    package static func globalNorm(_ g: UnsafePointer<Float>, count: Int) -> Double {
        let blocks = (count + blockSize - 1) / blockSize
        if blocks <= 1 { return VectorOps.sumOfSquares(g, count: count).squareRoot() }
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks) { partial in
            let partial = partial.baseAddress.unsafelyUnwrapped
            Parallel.rows(blocks, costPerRow: blockSize) { range in
                for b in range {
                    let start = b * blockSize
                    partial[b] = VectorOps.sumOfSquares(g + start, count: Swift.min(blockSize, count - start))
                }
            }
            var total = 0.0
            for b in 0..<blocks { total += partial[b] }
            return total.squareRoot()
        }
    }

    /// Scales `g` in place so its global norm is at most `maxNorm` and returns the norm before
    /// clipping and the factor applied (1 when nothing was done). `maxNorm <= 0` disables
    /// clipping. A non-finite norm leaves the gradients untouched: the trainer skips such a step.
    @discardableResult
    package static func clip(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float) -> (
        norm: Double, coefficient: Float
    ) {
        let norm = globalNorm(g, count: count)
        guard maxNorm > 0, norm.isFinite else { return (norm, 1) }
        let coefficient = Float(Double(maxNorm) / (norm + 1e-6))
        guard coefficient < 1 else { return (norm, 1) }
        let blocks = (count + blockSize - 1) / blockSize
        Parallel.rows(blocks, costPerRow: blockSize) { range in
            for b in range {
                let start = b * blockSize
                let end = Swift.min(count, start + blockSize)
                for i in start..<end { g[i] *= coefficient }
            }
        }
        return (norm, coefficient)
    }
}
