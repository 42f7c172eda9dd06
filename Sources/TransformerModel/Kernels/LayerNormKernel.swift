import TensorCore

/// LayerNorm over the last dimension (eps 1e-5, biased variance, as torch.nn.LayerNorm).
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
            for r in range {
                let xr = x + r * d, yr = y + r * d
                var sum: Float = 0
                for j in 0..<d { sum += xr[j] }
                let mu = sum / Float(d)
                var sq: Float = 0
                for j in 0..<d {
                    let t = xr[j] - mu
                    sq += t * t
                }
                let rs = 1 / (sq / Float(d) + epsilon).squareRoot()
                mean[r] = mu
                rstd[r] = rs
                for j in 0..<d { yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j] }
            }
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
            for r in range {
                let xr = x + r * d, gr = dy + r * d, dxr = dx + r * d
                let mu = mean[r], rs = rstd[r]
                var sumG: Float = 0, sumGX: Float = 0
                for j in 0..<d {
                    let g = gr[j] * gamma[j]
                    sumG += g
                    sumGX += g * (xr[j] - mu) * rs
                }
                let mG = sumG / Float(d), mGX = sumGX / Float(d)
                for j in 0..<d {
                    let xhat = (xr[j] - mu) * rs
                    dxr[j] += rs * (gr[j] * gamma[j] - mG - xhat * mGX)
                }
            }
        }
        // Parameter gradients: columns split across threads, rows summed in order (deterministic).
        Parallel.rows(d, costPerRow: 4 * rows) { cols in
            guard !cols.isEmpty else { return }
            for r in 0..<rows {
                let xr = x + r * d, gr = dy + r * d
                let mu = mean[r], rs = rstd[r]
                for j in cols {
                    dgamma[j] += gr[j] * (xr[j] - mu) * rs
                    dbeta[j] += gr[j]
                }
            }
        }
    }
}
