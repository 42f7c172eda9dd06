import TensorCore

/// nn.TransformerEncoderLayer: self-attention then feed-forward, each in a residual block.
final class EncoderLayer {
    let attention: MultiHeadAttention
    let feedForward: FeedForward
    let block1: Residual, block2: Residual
    let index: Int
    /// The stash this layer's forward fills: its own, or the one all layers share (checkpointing).
    private(set) var activations = LayerActivations()

    init(_ arena: ParameterArena, config c: ModelConfig, index: Int) {
        let p = "encoder.layers.\(index)."
        attention = MultiHeadAttention(arena, p + "self_attn", d: c.dModel, heads: c.heads)
        feedForward = FeedForward(arena, p, d: c.dModel, f: c.dFF)
        block1 = Residual(
            norm: LayerNorm(arena, p + "norm1", width: c.dModel), placement: c.norm,
            site: DropoutSite.encoder(index, 1))
        block2 = Residual(
            norm: LayerNorm(arena, p + "norm2", width: c.dModel), placement: c.norm,
            site: DropoutSite.encoder(index, 3))
        self.index = index
        use(activations)
    }

    /// Points every sublayer at the groups of `a` (an encoder layer needs no cross-attention and
    /// only two residual blocks).
    func use(_ a: LayerActivations) {
        activations = a
        attention.activations = a.selfAttention
        feedForward.activations = a.feedForward
        block1.use(a.blocks[0])
        block2.use(a.blocks[1])
    }

    func forward(
        _ x: UnsafePointer<Float>, batch: Int, length: Int, keyMask: UnsafePointer<Bool>,
        dropout: DropoutContext
    ) -> UnsafePointer<Float> {
        let n = batch * length
        let h = block1.forward(x, rows: n, dropout: dropout) { y in
            attention.forward(
                y, batch: batch, length: length, keyMask: keyMask, causal: false,
                dropout: dropout, site: DropoutSite.encoder(index, 0))
        }
        return block2.forward(h, rows: n, dropout: dropout) { y in
            feedForward.forward(y, rows: n, dropout: dropout, site: DropoutSite.encoder(index, 2))
        }
    }

    /// See `MultiHeadAttention.restoreDroppedProbabilities`.
    func restoreDroppedProbabilities() { attention.restoreDroppedProbabilities() }

    /// `flow`: d(output) in, d(input) out.
    func backward(_ flow: UnsafeMutablePointer<Float>, workspace ws: Workspace) {
        block2.backward(flow, workspace: ws) { dy, dx, acc in
            feedForward.backward(dy, into: dx, accumulate: acc, workspace: ws)
        }
        block1.backward(flow, workspace: ws) { dy, dx, acc in
            attention.backward(dy, into: dx, accumulate: acc, memoryGradient: nil, workspace: ws)
        }
    }
}
