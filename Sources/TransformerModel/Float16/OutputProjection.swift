import TensorCore

/// The output projection logits = x E^T with the [V, D] vocabulary matrix E (the tied embedding or
/// `generator.weight`). With Float32 parameters it is one `Linear`; with Float16 parameters E is
/// converted into the staging window a chunk of rows at a time (the window is sized for a layer
/// matrix, not for the vocabulary), each chunk writing its columns of the logits; with few rows
/// (decoding) the Float16 copy is read in place, with the same bits.
enum OutputProjection {
    static func forward(
        _ x: UnsafePointer<Float>, rows: Int, weight: ParameterRef, vocabulary v: Int, width d: Int,
        output: UnsafeMutablePointer<Float>
    ) {
        // Float32 parameters, or few rows (decoding: the Float16 copy is read in place).
        guard let staging = weight.staging, rows > BLAS.fewRows else {
            Linear.forward(x, rows: rows, inFeatures: d, outFeatures: v, weight: weight, bias: nil, output: output)
            return
        }
        let chunk = max(1, staging.window.count / d)
        for first in stride(from: 0, to: v, by: chunk) {
            let n = min(chunk, v - first)
            staging.stage(offset: weight.stagedOffset + first * d, count: n * d)
            BLAS.gemm(
                transB: true, m: rows, n: n, k: d, a: x, lda: d, b: staging.window.pointer, ldb: d,
                beta: 0, c: output + first, ldc: v)
        }
    }

    /// dE += dlogits^T x; dx = dlogits E (overwritten). With chunks, dx sums the chunks' products
    /// in chunk order (the only difference in summation order from the single GEMM).
    static func backward(
        _ dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, rows: Int, weight: ParameterRef,
        vocabulary v: Int, width d: Int, inputGradient dx: UnsafeMutablePointer<Float>
    ) {
        guard let staging = weight.staging else {
            Linear.backward(
                dy, input: x, rows: rows, inFeatures: d, outFeatures: v, weight: weight.value,
                inputGradient: dx, accumulateInput: false, weightGradient: weight.grad, biasGradient: nil)
            return
        }
        let chunk = max(1, staging.window.count / d)
        for first in stride(from: 0, to: v, by: chunk) {
            let n = min(chunk, v - first)
            BLAS.gemm(
                transA: true, m: n, n: d, k: rows, a: dy + first, lda: v, b: x, ldb: d,
                beta: 1, c: weight.grad + first * d, ldc: d)
            staging.stage(offset: weight.stagedOffset + first * d, count: n * d)
            BLAS.gemm(
                m: rows, n: d, k: n, a: dy + first, lda: v, b: staging.window.pointer, ldb: d,
                beta: first == 0 ? 0 : 1, c: dx, ldc: d)
        }
    }
}
