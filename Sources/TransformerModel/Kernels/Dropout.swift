import CKernels
import TensorCore

/// Identifies one forward pass for the counter-based dropout RNG.
///
/// A mask element is a pure function of (seed, step, micro-batch, site, element index), so the same
/// micro-batch gives the same masks on any worker, and a recomputed forward (activation
/// checkpointing) or a backward pass regenerates exactly the forward's mask.
public struct DropoutContext: Sendable, Equatable {
    /// The run's seed (`training.seed`).
    public var seed: UInt64
    /// The training step.
    public var step: Int
    /// The global index of the micro-batch in the run.
    public var microBatch: Int
    /// Probability of dropping an element, in [0, 1); 0 disables dropout.
    public var rate: Float

    /// The dropout of one forward pass.
    public init(seed: UInt64, step: Int, microBatch: Int, rate: Float) {
        self.seed = seed
        self.step = step
        self.microBatch = microBatch
        self.rate = rate
    }

    /// No dropout (evaluation, or a rate of zero).
    public static let disabled = DropoutContext(seed: 0, step: 0, microBatch: 0, rate: 0)

    /// True when elements are dropped (`rate > 0`).
    public var isActive: Bool { rate > 0 }

    /// Keep threshold on a 16-bit uniform: element kept when its 16 bits are >= threshold.
    @inline(__always) package var threshold: UInt32 { UInt32((rate * 65536).rounded()) }
    /// Inverted-dropout scale for kept elements.
    @inline(__always) package var keepScale: Float { 1 / (1 - rate) }
}

/// Dropout sites: a distinct id per place in the network where dropout happens.
package enum DropoutSite {
    package static let sourceEmbedding: UInt32 = 1
    package static let targetEmbedding: UInt32 = 2
    package static func encoder(_ layer: Int, _ k: Int) -> UInt32 { UInt32(100 + 10 * layer + k) }
    package static func decoder(_ layer: Int, _ k: Int) -> UInt32 { UInt32(10_000 + 10 * layer + k) }
}

package enum Dropout {
    /// dst[i] = src[i] * keep(i) / (1 - rate) for i in `range` (src and dst may alias). Used both in
    /// forward and, on the gradient, in backward: the mask is regenerated rather than stored.
    package static func apply(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, range: Range<Int>,
        context: DropoutContext, site: UInt32
    ) {
        guard context.isActive else {
            if UnsafePointer(dst) != src {
                (dst + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
            }
            return
        }
        // Philox4x32-10 in C (AVX2 when available): 8 16-bit uniforms per block, as `Philox.block`.
        ckernels_dropout(
            src, dst, Int64(range.lowerBound), Int64(range.upperBound),
            UInt32(truncatingIfNeeded: context.seed), UInt32(truncatingIfNeeded: context.seed >> 32),
            site, UInt32(truncatingIfNeeded: context.microBatch), UInt32(truncatingIfNeeded: context.step),
            context.threshold, context.keepScale)
    }

    /// Applies dropout to `count` elements, in parallel.
    package static func apply(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int,
        context: DropoutContext, site: UInt32
    ) {
        guard context.isActive else {
            if UnsafePointer(dst) != src { dst.update(from: src, count: count) }
            return
        }
        let blocks = (count + 7) / 8
        Parallel.rows(blocks, costPerRow: 256) { r in
            apply(
                src, dst, range: (r.lowerBound * 8)..<Swift.min(count, r.upperBound * 8), context: context, site: site)
        }
    }
}
