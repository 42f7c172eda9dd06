import TensorCore

/// The memory plan of activation checkpointing: what survives between forward and backward.
///
/// Forward keeps only each layer's input. Layer 0 reads its stack's embedding output, which the
/// embedding keeps anyway; every later layer reads a copy of the previous layer's output saved
/// here (a copy, because the previous layer wrote it into the shared stash that the next layer
/// overwrites). All layers of both stacks borrow the one `shared` stash, so the stashed
/// projections, probabilities, FFN hidden layers, LayerNorm outputs and residual sums exist for a
/// single layer at a time: peak activation memory is (layers x one [N, D] input) + one layer's
/// stash instead of every layer's stash. Backward refills `shared` for each layer by running its
/// forward again from the saved input with the same `DropoutContext`; the counter-based dropout
/// RNG regenerates the same masks, so the gradients are bit for bit those of the plain path.
final class ActivationCheckpoints {
    /// The stash every layer borrows in turn.
    let shared = LayerActivations()
    /// Output of encoder layer i, [B*Ss, D]: the saved input of layer i + 1 (the last one feeds the
    /// final encoder LayerNorm).
    let encoderOutputs: [FloatBuffer]
    /// Output of decoder layer i, [B*St, D], likewise.
    let decoderOutputs: [FloatBuffer]
    /// The decoder layer whose stash `shared` still holds from forward: the last one run. Its
    /// backward needs no recomputation, saving one layer's forward per step. Cleared as soon as
    /// anything else writes into `shared`.
    var liveDecoderLayer: Int?
    /// `liveDecoderLayer` as backward found it.
    private var liveInBackward: Int?

    init(encoderLayers: Int, decoderLayers: Int) {
        encoderOutputs = (0..<encoderLayers).map { _ in FloatBuffer() }
        decoderOutputs = (0..<decoderLayers).map { _ in FloatBuffer() }
    }

    /// Copies a layer's `output` ([count] floats, inside the shared stash) to `buffer` and returns
    /// the copy, which the next layer reads.
    func save(_ output: UnsafePointer<Float>, count: Int, into buffer: FloatBuffer) -> UnsafePointer<Float> {
        buffer.resize(count)
        buffer.pointer.update(from: output, count: count)
        return UnsafePointer(buffer.pointer)
    }

    /// Bytes allocated by the shared stash and the saved layer outputs.
    var allocatedBytes: Int {
        (encoderOutputs + decoderOutputs).reduce(shared.allocatedBytes) { $0 + $1.allocatedBytes }
    }
}

extension ActivationCheckpoints: MemoryPlan {
    func stash(forLayer i: Int, of stack: LayerStack) -> LayerActivations { shared }

    func beginForward(rows: Int, longest: Int, backward: Bool) {
        liveDecoderLayer = nil  // the encoder layers overwrite the shared stash
    }

    func afterForward(layer i: Int, of stack: LayerStack, output: UnsafePointer<Float>, count: Int) -> UnsafePointer<
        Float
    > {
        let outputs = stack == .encoder ? encoderOutputs : decoderOutputs
        if stack == .decoder && i == outputs.count - 1 { liveDecoderLayer = i }
        return save(output, count: count, into: outputs[i])
    }

    func beginBackward() {
        liveInBackward = liveDecoderLayer
        liveDecoderLayer = nil
    }

    func beforeBackward(
        layer i: Int, of stack: LayerStack, embedded: UnsafePointer<Float>, restore: () -> Void,
        recompute: (UnsafePointer<Float>) -> Void
    ) {
        if stack == .decoder && i == liveInBackward { return }
        recompute(
            i == 0 ? embedded : UnsafePointer((stack == .encoder ? encoderOutputs : decoderOutputs)[i - 1].pointer))
    }
}
