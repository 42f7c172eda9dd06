import TensorCore
import TransformerModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// PyTorch's `torch.optim.AdamW` (single-tensor path, amsgrad off) over one flat parameter arena.
///
/// Per element, in this order (as `_single_tensor_adam` with decoupled weight decay does it):
/// `p *= 1 - lr*wd` (matrices only), `m = lerp(m, g, 1-b1)`, `v = v*b2 + (1-b2)*g*g`,
/// `p += (-lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)` with `bc1 = 1-b1^t`, `bc2 = 1-b2^t`.
/// Scalars are formed in Double (PyTorch forms them from Python floats) and rounded to Float once
/// per step, so the per-element loop is pure Float arithmetic.
///
/// Only the elements of real tensors are visited: the alignment padding between tensors keeps
/// whatever it holds (zero), and so do its moments.
package final class AdamW {
    /// First moment (exponential average of gradients), laid out like the arena.
    package let m: FloatBuffer
    /// Second moment (exponential average of squared gradients), laid out like the arena.
    package let v: FloatBuffer
    /// Number of steps taken so far; the next `step` uses `t = step + 1`. Saved in checkpoints.
    package var step: Int = 0

    /// Hyperparameters in Double, as PyTorch holds them (Python floats); see `step`.
    package let beta1: Double
    package let beta2: Double
    package let eps: Double
    package let weightDecay: Double
    /// Number of elements of the arena (including padding).
    package let count: Int

    /// Work units of at most `chunkSize` elements that never straddle two tensors, so each unit
    /// has one decay flag. Fixed at init: the work split never depends on the thread count.
    private let chunks: [Chunk]
    private static let chunkSize = 1 << 14

    private struct Chunk {
        let start: Int
        let end: Int
        let decays: Bool
    }

    /// Zero moments and step 0 for an arena laid out by `layout`. Pass the hyperparameters as
    /// the config holds them (Double) to get PyTorch's constants to the last bit: `1 - 0.9` in
    /// Double rounds to a different Float than `1 - Float(0.9)`.
    package init(layout: ParameterLayout, beta1: Double, beta2: Double, eps: Double, weightDecay: Double) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        count = layout.totalCount
        m = FloatBuffer(count: count)
        v = FloatBuffer(count: count)
        var chunks: [Chunk] = []
        for entry in layout.entries {
            var start = entry.offset
            let end = entry.offset + entry.count
            while start < end {
                let stop = Swift.min(end, start + AdamW.chunkSize)
                chunks.append(Chunk(start: start, end: stop, decays: entry.decays))
                start = stop
            }
        }
        self.chunks = chunks
    }

    /// The same optimizer from Float hyperparameters (each widened exactly to Double).
    package convenience init(layout: ParameterLayout, beta1: Float, beta2: Float, eps: Float, weightDecay: Float) {
        self.init(
            layout: layout, beta1: Double(beta1), beta2: Double(beta2), eps: Double(eps),
            weightDecay: Double(weightDecay))
    }

    /// One update with a Float learning rate (widened exactly to Double).
    package func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, lr: Float) {
        step(parameters: parameters, gradients: gradients, lr: Double(lr))
    }

    /// Applies one update in place. `parameters` and `gradients` are arenas of `count` elements
    /// laid out by the layout given at init.
    package func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, lr: Double) {
        self.step += 1
        let t = Double(self.step)
        let biasCorrection1 = 1 - pow(beta1, t)
        let biasCorrection2 = 1 - pow(beta2, t)

        // The scalars PyTorch hands its Float kernels, each rounded once from Double.
        let decayFactor = Float(1 - lr * weightDecay)
        let lerpWeight = Float(1 - beta1)
        let beta2F = Float(beta2)
        let oneMinusBeta2 = Float(1 - beta2)
        let negativeStepSize = Float(-(lr / biasCorrection1))
        let correction2Sqrt = Float(biasCorrection2.squareRoot())
        let epsF = Float(eps)

        let m = self.m.pointer, v = self.v.pointer
        let chunks = self.chunks
        Parallel.rows(chunks.count, costPerRow: AdamW.chunkSize * 16) { range in
            for c in range {
                let chunk = chunks[c]
                // Multiplying by 1 is exact, so entries without decay are unaffected.
                let decay: Float = chunk.decays ? decayFactor : 1
                var i = chunk.start
                // Eight lanes at a time, then the same arithmetic per element for the tail: each
                // element sees the identical sequence of Float operations either way.
                while i + 8 <= chunk.end {
                    let g = AdamW.load(gradients + i)
                    let mi = AdamW.load(m + i) + lerpWeight * (g - AdamW.load(m + i))
                    let vi = AdamW.load(v + i) * beta2F + oneMinusBeta2 * g * g
                    let denom = vi.squareRoot() / correction2Sqrt + epsF
                    let p = AdamW.load(parameters + i) * decay
                    AdamW.store(mi, m + i)
                    AdamW.store(vi, v + i)
                    AdamW.store(p + negativeStepSize * mi / denom, parameters + i)
                    i += 8
                }
                while i < chunk.end {
                    let g = gradients[i]
                    // torch lerp with weight < 0.5: m + w * (g - m).
                    let mi = m[i] + lerpWeight * (g - m[i])
                    // torch addcmul: v*b2 + (value * g) * g.
                    let vi = v[i] * beta2F + oneMinusBeta2 * g * g
                    let denom = vi.squareRoot() / correction2Sqrt + epsF
                    m[i] = mi
                    v[i] = vi
                    // torch addcdiv: p + (value * m) / denom, after the decoupled decay.
                    parameters[i] = parameters[i] * decay + negativeStepSize * mi / denom
                    i += 1
                }
            }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func store(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD8<Float>.self)
    }
}
