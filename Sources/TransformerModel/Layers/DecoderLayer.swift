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
        block1 = Residual(
            norm: LayerNorm(arena, p + "norm1", width: c.dModel), placement: c.norm,
            site: DropoutSite.decoder(index, 1))
        block2 = Residual(
            norm: LayerNorm(arena, p + "norm2", width: c.dModel), placement: c.norm,
            site: DropoutSite.decoder(index, 3))
        block3 = Residual(
            norm: LayerNorm(arena, p + "norm3", width: c.dModel), placement: c.norm,
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
        block1.use(a.blocks[0])
        block2.use(a.blocks[1])
        block3.use(a.blocks[2])
    }

    func forward(
        _ x: UnsafePointer<Float>, memory: UnsafePointer<Float>, batch: Int, targetLength: Int, sourceLength: Int,
        targetMask: UnsafePointer<Bool>, sourceMask: UnsafePointer<Bool>, dropout: DropoutContext
    ) -> UnsafePointer<Float> {
        sublayers(
            x, rows: batch * targetLength, dropout: dropout,
            selfAttention: { y in
                selfAttention.forward(
                    y, batch: batch, length: targetLength, keyMask: targetMask, causal: true,
                    dropout: dropout, site: DropoutSite.decoder(index, 0))
            },
            crossAttention: { y in
                crossAttention.forward(
                    y, memory: memory, batch: batch, queryLength: targetLength, keyLength: sourceLength,
                    keyMask: sourceMask, dropout: dropout, site: DropoutSite.decoder(index, 2))
            })
    }

    /// One incremental decoding step: x [B, D] is position `position` of each sequence. Self-attention
    /// appends its keys and values to `cache` and attends to the positions cached so far;
    /// cross-attention reads the memory's keys and values from `cache`. The residual blocks and the
    /// feed-forward network are `forward`'s own (they work row by row), with dropout off.
    func step(
        _ x: UnsafePointer<Float>, batch: Int, position: Int, cache: KeyValueCache,
        sourceMask: UnsafePointer<Bool>
    ) -> UnsafePointer<Float> {
        sublayers(
            x, rows: batch, dropout: .disabled,
            selfAttention: { y in
                selfAttention.step(
                    y, batch: batch, position: position, cache: cache.selfKeyValues.pointer,
                    capacity: cache.capacity)
            },
            crossAttention: { y in
                crossAttention.step(
                    y, batch: batch, keyValues: cache.crossKeyValues.pointer, keyLength: cache.sourceLength,
                    keyMask: sourceMask)
            })
    }

    /// The layer's wiring, shared by `forward` and `step` so that decoding cannot drift from
    /// training: self-attention, cross-attention and the feed-forward network, each in its
    /// residual block, over `rows` rows.
    private func sublayers(
        _ x: UnsafePointer<Float>, rows n: Int, dropout: DropoutContext,
        selfAttention attendToTarget: (UnsafePointer<Float>) -> UnsafeMutablePointer<Float>,
        crossAttention attendToMemory: (UnsafePointer<Float>) -> UnsafeMutablePointer<Float>
    )
        -> UnsafePointer<Float>
    {
        let h1 = block1.forward(x, rows: n, dropout: dropout, attendToTarget)
        let h2 = block2.forward(h1, rows: n, dropout: dropout, attendToMemory)
        return block3.forward(h2, rows: n, dropout: dropout) { y in
            feedForward.forward(y, rows: n, dropout: dropout, site: DropoutSite.decoder(index, 4))
        }
    }

    /// See `MultiHeadAttention.restoreDroppedProbabilities`.
    func restoreDroppedProbabilities() {
        selfAttention.restoreDroppedProbabilities()
        crossAttention.restoreDroppedProbabilities()
    }

    /// `flow`: d(output) in, d(input) out; adds this layer's share of d(memory) to `memoryGradient`.
    func backward(
        _ flow: UnsafeMutablePointer<Float>, memoryGradient: UnsafeMutablePointer<Float>, workspace ws: Workspace
    ) {
        block3.backward(flow, workspace: ws) { dy, dx, acc in
            feedForward.backward(dy, into: dx, accumulate: acc, workspace: ws)
        }
        block2.backward(flow, workspace: ws) { dy, dx, acc in
            crossAttention.backward(dy, into: dx, accumulate: acc, memoryGradient: memoryGradient, workspace: ws)
        }
        block1.backward(flow, workspace: ws) { dy, dx, acc in
            selfAttention.backward(dy, into: dx, accumulate: acc, memoryGradient: nil, workspace: ws)
        }
    }
}
