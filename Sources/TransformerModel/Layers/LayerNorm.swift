import TensorCore

/// A LayerNorm with its parameters and the per-row statistics of the last forward.
final class LayerNorm {
    let gamma: ParameterRef, beta: ParameterRef
    let width: Int
    /// Where forward writes its output and statistics: the layer's own stash, or the stash all
    /// layers share under activation checkpointing (see `LayerActivations`).
    var activations = NormActivations()
    private var input: UnsafePointer<Float>?
    private var rows = 0

    init(_ arena: ParameterArena, _ prefix: String, width: Int) {
        gamma = arena.ref(prefix + ".weight")
        beta = arena.ref(prefix + ".bias")
        self.width = width
    }

    /// Normalises `x` [rows, width] into the stash's output; `x` must stay valid until `backward`.
    @discardableResult
    func forward(_ x: UnsafePointer<Float>, rows: Int) -> UnsafeMutablePointer<Float> {
        let a = activations
        a.output.resize(rows * width)
        a.mean.resize(rows)
        a.rstd.resize(rows)
        self.input = x
        self.rows = rows
        LayerNormKernel.forward(
            x, rows: rows, width: width, gamma: gamma.value, beta: beta.value,
            output: a.output.pointer, mean: a.mean.pointer, rstd: a.rstd.pointer)
        return a.output.pointer
    }

    /// Writes `sum` = x + residual [rows, width] and normalises it in the same pass (a residual
    /// connection followed by its norm); `sum` must stay valid until `backward`.
    @discardableResult
    func forward(
        _ x: UnsafePointer<Float>, adding residual: UnsafePointer<Float>, sum: UnsafeMutablePointer<Float>, rows: Int
    ) -> UnsafeMutablePointer<Float> {
        let a = activations
        a.output.resize(rows * width)
        a.mean.resize(rows)
        a.rstd.resize(rows)
        self.input = UnsafePointer(sum)
        self.rows = rows
        LayerNormKernel.forward(
            x, adding: residual, sum: sum, rows: rows, width: width, gamma: gamma.value, beta: beta.value,
            output: a.output.pointer, mean: a.mean.pointer, rstd: a.rstd.pointer)
        return a.output.pointer
    }

    /// dx += LN'(x)^T dy, and accumulates the parameter gradients.
    func backward(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        guard let input else { preconditionFailure("LayerNorm.backward before forward") }
        LayerNormKernel.backward(
            dy, input: input, rows: rows, width: width, gamma: gamma.value,
            mean: activations.mean.pointer, rstd: activations.rstd.pointer, inputGradient: dx,
            gammaGradient: gamma.grad, betaGradient: beta.grad)
    }
}
