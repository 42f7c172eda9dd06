import CKernels
import TensorCore

/// LayerNorm over the last dimension (eps 1e-5, biased variance, as torch.nn.LayerNorm).
///
/// The rows run in C (`ckernels_layernorm_*`, AVX2+FMA when the CPU has it, a scalar path with the
/// same bits otherwise): each sum is over 8 lanes in a fixed order, so a row's result depends on
/// neither the CPU, the thread count, nor how many rows a call holds (decoding normalises one row
/// at a time and must match training's batch).
package enum LayerNormKernel {
    package static let epsilon: Float = 1e-5

    /// y = (x - mean) * rstd * gamma + beta per row; stores mean and rstd per row for backward.
    package static func forward(
        _ x: UnsafePointer<Float>, rows: Int, width d: Int,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        Parallel.rows(rows, costPerRow: 8 * d) { range in
            let o = range.lowerBound
            ckernels_layernorm_forward(
                x + o * d, nil, nil, Int64(range.count), Int64(d), gamma, beta, epsilon, y + o * d, mean + o,
                rstd + o)
        }
    }

    /// The residual connection and its norm in one pass: sum = x + residual, then y = LN(sum)
    /// exactly as `forward(sum, ...)` computes it.
    package static func forward(
        _ x: UnsafePointer<Float>, adding residual: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>,
        rows: Int, width d: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        Parallel.rows(rows, costPerRow: 9 * d) { range in
            let o = range.lowerBound
            ckernels_layernorm_forward(
                x + o * d, residual + o * d, sum + o * d, Int64(range.count), Int64(d), gamma, beta, epsilon,
                y + o * d, mean + o, rstd + o)
        }
    }

    /// dx += LN'(x)^T dy; dgamma += sum dy*xhat; dbeta += sum dy.
    package static func backward(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, rows: Int, width d: Int,
        gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        inputGradient dx: UnsafeMutablePointer<Float>,
        gammaGradient dgamma: UnsafeMutablePointer<Float>,
        betaGradient dbeta: UnsafeMutablePointer<Float>
    ) {
        Parallel.rows(rows, costPerRow: 10 * d) { range in
            let o = range.lowerBound
            ckernels_layernorm_input_gradient(
                dy + o * d, x + o * d, Int64(range.count), Int64(d), gamma, mean + o, rstd + o, dx + o * d)
        }
        // Parameter gradients: columns split across threads, rows summed in order (deterministic).
        Parallel.rows(d, costPerRow: 4 * rows) { cols in
            guard !cols.isEmpty else { return }
            ckernels_layernorm_parameter_gradients(
                dy, x, Int64(rows), Int64(d), Int64(cols.lowerBound), Int64(cols.upperBound), mean, rstd, dgamma,
                dbeta)
        }
    }
}
