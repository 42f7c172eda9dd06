import TensorCore

/// nn.TransformerDecoderLayer: causal self-attention, cross-attention over the encoder memory,
/// feed-forward; each in a residual block.
final class DecoderLayer {
    let selfAttention: MultiHeadAttention
    let crossAttention: MultiHeadAttention
    let feedForward: FeedForward
    let block1: Residual, block2: Residual, block3: Residual
    let index: Int
    /// The stash this layer's forward fills: its own, or the one all layers share (checkpointing).
    private(set) var activations = LayerActivations()

    init(_ arena: ParameterArena, config c: ModelConfig, index: Int) {
        let p = "decoder.layers.\(index)."
        selfAttention = MultiHeadAttention(arena, p + "self_attn", d: c.dModel, heads: c.heads)
        crossAttention = MultiHeadAttention(arena, p + "multihead_attn", d: c.dModel, heads: c.heads)
        feedForward = FeedForward(arena, p, d: c.dModel, f: c.dFF)
        block1 = Residual(norm: LayerNorm(arena, p + "norm1", width: c.dModel), placement: c.norm,
                          site: DropoutSite.decoder(index, 1))
        block2 = Residual(norm: LayerNorm(arena, p + "norm2", width: c.dModel), placement: c.norm,
                          site: DropoutSite.decoder(index, 3))
        block3 = Residual(norm: LayerNorm(arena, p + "norm3", width: c.dModel), placement: c.norm,
                          site: DropoutSite.decoder(index, 5))
        self.index = index
        use(activations)
    }

    /// Points every sublayer at the groups of `a`.
    func use(_ a: LayerActivations) {
        activations = a
        selfAttention.activations = a.selfAttention
        crossAttention.activations = a.crossAttention
        feedForward.activations = a.feedForward
        block1.use(a.blocks[0]); block2.use(a.blocks[1]); block3.use(a.blocks[2])
    }

    func forward(_ x: UnsafePointer<Float>, memory: UnsafePointer<Float>, batch: Int, targetLength: Int, sourceLength: Int,
                 targetMask: UnsafePointer<Bool>, sourceMask: UnsafePointer<Bool>, dropout: DropoutContext) -> UnsafePointer<Float> {
        let n = batch * targetLength
        let h1 = block1.forward(x, rows: n, dropout: dropout) { y in
            selfAttention.forward(y, batch: batch, length: targetLength, keyMask: targetMask, causal: true,
                                  dropout: dropout, site: DropoutSite.decoder(index, 0))
        }
        let h2 = block2.forward(h1, rows: n, dropout: dropout) { y in
            crossAttention.forward(y, memory: memory, batch: batch, queryLength: targetLength, keyLength: sourceLength,
                                   keyMask: sourceMask, dropout: dropout, site: DropoutSite.decoder(index, 2))
        }
        return block3.forward(h2, rows: n, dropout: dropout) { y in
            feedForward.forward(y, rows: n, dropout: dropout, site: DropoutSite.decoder(index, 4))
        }
    }

    /// See `MultiHeadAttention.restoreDroppedProbabilities`.
    func restoreDroppedProbabilities() {
        selfAttention.restoreDroppedProbabilities(); crossAttention.restoreDroppedProbabilities()
    }

    /// `flow`: d(output) in, d(input) out; adds this layer's share of d(memory) to `memoryGradient`.
    func backward(_ flow: UnsafeMutablePointer<Float>, memoryGradient: UnsafeMutablePointer<Float>, workspace ws: Workspace) {
        block3.backward(flow, workspace: ws) { dy, dx, acc in feedForward.backward(dy, into: dx, accumulate: acc, workspace: ws) }
        block2.backward(flow, workspace: ws) { dy, dx, acc in
            crossAttention.backward(dy, into: dx, accumulate: acc, memoryGradient: memoryGradient, workspace: ws)
        }
        block1.backward(flow, workspace: ws) { dy, dx, acc in
            selfAttention.backward(dy, into: dx, accumulate: acc, memoryGradient: nil, workspace: ws)
        }
    }
}
