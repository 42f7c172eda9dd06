import TensorCore

/// linear2(dropout(relu(linear1(x)))), as in nn.TransformerEncoderLayer.
final class FeedForward {
    let w1: ParameterRef, b1: ParameterRef, w2: ParameterRef, b2: ParameterRef
    let d: Int, f: Int
    /// Hidden layer and output; owned by this layer or shared by all layers (see `LayerActivations`).
    var activations = FeedForwardActivations()
    private var input: UnsafePointer<Float>?
    private var rows = 0
    private var dropout = DropoutContext.disabled

    init(_ arena: ParameterArena, _ prefix: String, d: Int, f: Int) {
        w1 = arena.ref(prefix + "linear1.weight")
        b1 = arena.ref(prefix + "linear1.bias")
        w2 = arena.ref(prefix + "linear2.weight")
        b2 = arena.ref(prefix + "linear2.bias")
        self.d = d
        self.f = f
    }

    @discardableResult
    func forward(_ x: UnsafePointer<Float>, rows: Int, dropout: DropoutContext, site: UInt32) -> UnsafeMutablePointer<
        Float
    > {
        input = x
        self.rows = rows
        self.dropout = dropout
        let hidden = activations.hidden, output = activations.output
        hidden.resize(rows * f)
        output.resize(rows * d)
        Linear.forward(
            x, rows: rows, inFeatures: d, outFeatures: f, weight: w1, bias: b1.value, output: hidden.pointer)
        let h = hidden.pointer, n = rows * f
        Parallel.rows(n / 4096 + 1, costPerRow: 4096) { r in
            let lo = r.lowerBound * 4096, hi = Swift.min(n, r.upperBound * 4096)
            if hi > lo { VectorOps.relu(h + lo, count: hi - lo) }
        }
        Dropout.apply(h, h, count: n, context: dropout, site: site)
        Linear.forward(
            h, rows: rows, inFeatures: f, outFeatures: d, weight: w2, bias: b2.value, output: output.pointer)
        return output.pointer
    }

    /// dx (+)= FFN'(x)^T dy.
    func backward(
        _ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, accumulate: Bool, workspace ws: Workspace
    ) {
        guard let input else { preconditionFailure("FeedForward.backward before forward") }
        ws.hidden.resize(rows * f)
        let dh = ws.hidden.pointer, h = activations.hidden.pointer, n = rows * f
        Linear.backward(
            dy, input: h, rows: rows, inFeatures: f, outFeatures: d, weight: w2.value,
            inputGradient: dh, accumulateInput: false, weightGradient: w2.grad, biasGradient: b2.grad)
        let s: Float = dropout.isActive ? dropout.keepScale : 1
        Parallel.rows(n / 4096 + 1, costPerRow: 4096) { r in
            let lo = r.lowerBound * 4096, hi = Swift.min(n, r.upperBound * 4096)
            if hi > lo { VectorOps.reluBackward(dh + lo, output: h + lo, count: hi - lo, scale: s) }
        }
        Linear.backward(
            dh, input: input, rows: rows, inFeatures: d, outFeatures: f, weight: w1.value,
            inputGradient: dx, accumulateInput: accumulate, weightGradient: w1.grad, biasGradient: b1.grad)
    }
}
