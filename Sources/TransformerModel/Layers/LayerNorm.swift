import TensorCore

/// A LayerNorm with its parameters and the per-row statistics of the last forward.
final class LayerNorm {
    let gamma: ParameterRef, beta: ParameterRef
    let width: Int
    let output = FloatBuffer()
    private let mean = FloatBuffer(), rstd = FloatBuffer()
    private var input: UnsafePointer<Float>?
    private var rows = 0

    init(_ arena: ParameterArena, _ prefix: String, width: Int) {
        gamma = arena.ref(prefix + ".weight"); beta = arena.ref(prefix + ".bias"); self.width = width
    }

    /// Normalises `x` [rows, width] into `output`; `x` must stay valid until `backward`.
    @discardableResult
    func forward(_ x: UnsafePointer<Float>, rows: Int) -> UnsafeMutablePointer<Float> {
        output.resize(rows * width); mean.resize(rows); rstd.resize(rows)
        self.input = x; self.rows = rows
        LayerNormKernel.forward(x, rows: rows, width: width, gamma: gamma.value, beta: beta.value,
                                output: output.pointer, mean: mean.pointer, rstd: rstd.pointer)
        return output.pointer
    }

    /// dx += LN'(x)^T dy, and accumulates the parameter gradients.
    func backward(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        guard let input else { preconditionFailure("LayerNorm.backward before forward") }
        LayerNormKernel.backward(dy, input: input, rows: rows, width: width, gamma: gamma.value,
                                 mean: mean.pointer, rstd: rstd.pointer, inputGradient: dx,
                                 gammaGradient: gamma.grad, betaGradient: beta.grad)
    }

    func releaseActivations() { output.resize(0); output.shrinkToFit() }
}
