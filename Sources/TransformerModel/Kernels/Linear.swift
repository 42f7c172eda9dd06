import CKernels
import TensorCore

/// y = x W^T + b over row-major activations, with W stored [out, in] as PyTorch stores it.
package enum Linear {
    /// y[rows, outF] = x[rows, inF] * W^T + bias.
    @inline(__always)
    package static func forward(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output y: UnsafeMutablePointer<Float>
    ) {
        seed(y, rows: rows, width: outFeatures, with: bias)
        BLAS.gemm(
            transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
            b: weight, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: y, ldc: outFeatures)
    }

    /// y[rows, outF] = x[rows, inF] * W^T + bias with W the parameter `weight` from element
    /// `weightOffset` on (a block of rows of it, such as the K and V rows of `in_proj_weight`).
    /// With Float16 parameters and at most `BLAS.fewRows` rows (decoding), the product reads the
    /// Float16 copy in place instead of converting W into the staging window first: the same bits
    /// (the conversion is exact and the few-rows product sums in a fixed order), half the bytes.
    @inline(__always)
    package static func forward(
        _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
        weight: ParameterRef, weightOffset: Int = 0, bias: UnsafePointer<Float>?,
        output y: UnsafeMutablePointer<Float>
    ) {
        guard rows <= BLAS.fewRows, let half = weight.halfValues else {
            forward(
                x, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight.value + weightOffset,
                bias: bias, output: y)
            return
        }
        seed(y, rows: rows, width: outFeatures, with: bias)
        BLAS.gemmFewRows(
            m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, halfB: half + weightOffset,
            ldb: inFeatures, accumulate: bias != nil, c: y, ldc: outFeatures)
    }

    /// Accumulates dW += dy^T x and db += sum_rows dy; writes (or adds, if `accumulateInput`) dx = dy W.
    @inline(__always)
    package static func backward(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, rows: Int,
        inFeatures: Int, outFeatures: Int, weight: UnsafePointer<Float>,
        inputGradient dx: UnsafeMutablePointer<Float>?, accumulateInput: Bool,
        weightGradient dw: UnsafeMutablePointer<Float>,
        biasGradient db: UnsafeMutablePointer<Float>?
    ) {
        BLAS.gemm(
            transA: true, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures,
            b: x, ldb: inFeatures, beta: 1, c: dw, ldc: inFeatures)
        if let db { columnSums(dy, rows: rows, columns: outFeatures, into: db) }
        if let dx {
            BLAS.gemm(
                m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
                beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
        }
    }

    /// Copies the bias into every row of y, so the product can accumulate onto it (beta = 1).
    @inline(__always)
    private static func seed(
        _ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, with bias: UnsafePointer<Float>?
    ) {
        guard let bias else { return }
        for r in 0..<rows { (y + r * width).update(from: bias, count: width) }
    }

    /// out[c] += sum_r m[r, c], split across threads by column so the sum order is fixed.
    package static func columnSums(
        _ m: UnsafePointer<Float>, rows: Int, columns: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        Parallel.rows(columns, costPerRow: rows) { cols in
            guard !cols.isEmpty else { return }
            ckernels_column_sums(m, Int64(rows), Int64(columns), Int64(cols.lowerBound), Int64(cols.upperBound), out)
        }
    }
}
