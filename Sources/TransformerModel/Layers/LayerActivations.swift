import TensorCore

// The buffers an encoder or decoder layer stashes in forward for its backward, grouped by the
// sublayer that fills them. Sublayers hold their group by reference rather than owning the
// buffers, so the same code runs in two memory plans:
// - plain: every layer has its own `LayerActivations`, all layers' stashes live at once;
// - activation checkpointing: every layer borrows one shared `LayerActivations`, refilled by
//   recomputing a layer's forward just before its backward, so only one layer's stash exists;
// - Float16 activations: every layer borrows one shared `LayerActivations` too; after a layer's
//   forward, what its backward reads is packed into that layer's Float16 copy, and unpacked back
//   into the shared stash just before its backward (see `Float16ActivationStash`).

/// What a `LayerNorm` keeps: its output and per-row statistics.
final class NormActivations {
    let output = FloatBuffer()
    let mean = FloatBuffer(), rstd = FloatBuffer()

    var buffers: [FloatBuffer] { [output, mean, rstd] }
}

/// What a `Residual` block keeps: x + dropout(F(.)), plus its LayerNorm's stash.
final class ResidualActivations {
    let sum = FloatBuffer()
    let norm = NormActivations()

    var buffers: [FloatBuffer] { [sum] + norm.buffers }
}

/// What a `MultiHeadAttention` keeps.
final class AttentionActivations {
    /// [N, 3D] for self-attention; [N, D] (queries) for cross-attention.
    let projections = FloatBuffer()
    /// [Nk, 2D] keys and values of the memory (cross-attention only).
    let keyValues = FloatBuffer()
    /// [B, H, Sq, Sk] softmax output, and its dropped-out copy (only while dropout is active).
    let probs = FloatBuffer(), dropped = FloatBuffer()
    let context = FloatBuffer()
    let output = FloatBuffer()

    var buffers: [FloatBuffer] { [projections, keyValues, probs, dropped, context, output] }
}

/// What a `FeedForward` keeps.
final class FeedForwardActivations {
    /// relu(linear1(x)) after dropout: the only activation backward needs (kept entries are the
    /// non-zero ones, so it encodes both the ReLU and the dropout mask).
    let hidden = FloatBuffer()
    let output = FloatBuffer()

    var buffers: [FloatBuffer] { [hidden, output] }
}

/// The stash of one whole layer, sized for a decoder layer. An encoder layer uses the
/// self-attention, feed-forward and first two residual groups; the rest stay at their initial
/// one-element allocation, which is what lets one instance serve both stacks when shared.
final class LayerActivations {
    let selfAttention = AttentionActivations()
    let crossAttention = AttentionActivations()
    let feedForward = FeedForwardActivations()
    let blocks = [ResidualActivations(), ResidualActivations(), ResidualActivations()]

    var buffers: [FloatBuffer] {
        selfAttention.buffers + crossAttention.buffers + feedForward.buffers + blocks.flatMap(\.buffers)
    }

    /// Bytes currently allocated by all the groups (memory accounting; allocates a small array).
    var allocatedBytes: Int { buffers.reduce(0) { $0 + $1.allocatedBytes } }

    /// What a layer's backward reads from this stash: `values` (stored in Float16 by the Float16
    /// activations option) and `statistics` (LayerNorm mean and rstd, small, kept in Float32).
    /// Left out: sublayer outputs (dropout and the residual add consume them in forward, backward
    /// never reads them), the dropped-out probabilities (regenerated from the probabilities and
    /// the counter-based dropout mask) and the groups an encoder layer does not use.
    func backwardState(decoder: Bool) -> (values: [FloatBuffer], statistics: [FloatBuffer]) {
        let attentions = decoder ? [selfAttention, crossAttention] : [selfAttention]
        let used = decoder ? blocks : Array(blocks.prefix(2))
        var values = attentions.flatMap { [$0.projections, $0.probs, $0.context] } + [feedForward.hidden]
        if decoder { values.append(crossAttention.keyValues) }
        values += used.flatMap { [$0.sum, $0.norm.output] }
        return (values, used.flatMap { [$0.norm.mean, $0.norm.rstd] })
    }

    /// Grows the groups both stacks use (self-attention, feed-forward, first two residual blocks)
    /// to hold a layer of `rows` rows and `probabilities` attention probabilities, without
    /// changing their contents' meaning. The Float16 plan calls it before a forward so that the
    /// decoder never reallocates a buffer whose address the encoder layers recorded for backward.
    func reserve(rows n: Int, probabilities: Int, dModel d: Int, dFF f: Int) {
        func grow(_ b: FloatBuffer, _ count: Int) {
            guard count > b.capacity else { return }
            let kept = b.count
            b.resize(count)
            b.resize(kept)
        }
        grow(selfAttention.projections, n * 3 * d)
        grow(selfAttention.probs, probabilities)
        grow(selfAttention.dropped, probabilities)
        grow(selfAttention.context, n * d)
        grow(selfAttention.output, n * d)
        grow(feedForward.hidden, n * f)
        grow(feedForward.output, n * d)
        for block in blocks.prefix(2) {
            grow(block.sum, n * d)
            grow(block.norm.output, n * d)
            grow(block.norm.mean, n)
            grow(block.norm.rstd, n)
        }
    }
}
