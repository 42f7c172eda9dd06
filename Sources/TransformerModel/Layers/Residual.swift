import TensorCore

/// One sublayer with its residual connection, dropout and LayerNorm, in either placement:
/// `pre`: out = x + dropout(F(LN(x)));  `post`: out = LN(x + dropout(F(x))).
/// The sublayer itself is passed as closures, so attention and feed-forward share this wiring.
final class Residual {
    let norm: LayerNorm
    let placement: NormPlacement
    let site: UInt32
    /// Holds x + dropout(F(.)) (the block output in pre-norm, the LayerNorm input in post-norm)
    /// and the norm's stash; owned by this block or shared by all layers (see `LayerActivations`).
    private(set) var activations = ResidualActivations()
    private var dropout = DropoutContext.disabled
    private var rows = 0

    init(norm: LayerNorm, placement: NormPlacement, site: UInt32) {
        self.norm = norm
        self.placement = placement
        self.site = site
        norm.activations = activations.norm
    }

    /// Points this block (and its LayerNorm) at another stash.
    func use(_ a: ResidualActivations) {
        activations = a
        norm.activations = a.norm
    }

    func forward(
        _ x: UnsafePointer<Float>, rows: Int, dropout: DropoutContext,
        _ sublayer: (UnsafePointer<Float>) -> UnsafeMutablePointer<Float>
    ) -> UnsafePointer<Float> {
        self.rows = rows
        self.dropout = dropout
        let n = rows * norm.width
        let sum = activations.sum
        sum.resize(n)
        let f = sublayer(placement == .pre ? UnsafePointer(norm.forward(x, rows: rows)) : x)
        Dropout.apply(f, f, count: n, context: dropout, site: site)
        let s = sum.pointer
        switch placement {
        case .pre:
            let f = UnsafePointer(f)
            Parallel.rows(n / norm.width, costPerRow: norm.width) { r in
                let o = r.lowerBound * norm.width, count = r.count * norm.width
                for i in o..<(o + count) { s[i] = x[i] + f[i] }
            }
            return UnsafePointer(s)
        case .post:
            return UnsafePointer(norm.forward(x, adding: f, sum: s, rows: rows))
        }
    }

    /// Turns `flow` = d(out) into d(x), in place. `sublayerBackward(dy, dx, accumulate)` must write
    /// (or add to) dx the gradient of the sublayer's input.
    func backward(
        _ flow: UnsafeMutablePointer<Float>, workspace ws: Workspace,
        _ sublayerBackward: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Bool) -> Void
    ) {
        let n = rows * norm.width
        ws.sublayer.resize(n)
        ws.normInput.resize(n)
        let ds = ws.sublayer.pointer, dn = ws.normInput.pointer
        switch placement {
        case .pre:
            Dropout.apply(flow, ds, count: n, context: dropout, site: site)
            sublayerBackward(ds, dn, false)
            norm.backward(dn, into: flow)
        case .post:
            dn.update(repeating: 0, count: n)
            norm.backward(flow, into: dn)
            flow.update(from: dn, count: n)
            Dropout.apply(dn, ds, count: n, context: dropout, site: site)
            sublayerBackward(ds, flow, true)
        }
    }
}
