import TensorCore

// The buffers an encoder or decoder layer stashes in forward for its backward, grouped by the
// sublayer that fills them. Sublayers hold their group by reference rather than owning the
// buffers, so the same code runs in two memory plans:
// - plain: every layer has its own `LayerActivations`, all layers' stashes live at once;
// - activation checkpointing: every layer borrows one shared `LayerActivations`, refilled by
//   recomputing a layer's forward just before its backward, so only one layer's stash exists.

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
}
