import TensorCore

/// The memory plan of the Float16 activations option (`training.float16.activations`): what a
/// layer's backward needs survives between forward and backward in Float16, not Float32.
///
/// Compute stays Float32. Every layer of both stacks runs in the one Float32 `shared` stash (like
/// activation checkpointing); right after a layer's forward, the buffers its backward reads (see
/// `LayerActivations.backwardState`) are packed into that layer's `PackedLayerState`, and right
/// before its backward they are unpacked into `shared` at the same addresses the layer recorded in
/// forward. A layer's input (the previous layer's output) is packed too and unpacked into the
/// stack's `carry` buffer, the fixed Float32 address every layer after the first reads its input
/// from. LayerNorm statistics stay Float32; softmax, the loss and all accumulations are computed in
/// Float32; attention scores are never stored (the stash holds probabilities, masked ones are 0).
/// Gradients therefore differ from the Float32 path only by the rounding of the stored values.
final class Float16ActivationStash {
    /// The Float32 stash every layer computes in.
    let shared = LayerActivations()
    let encoder: [PackedLayerState]
    let decoder: [PackedLayerState]
    /// Input of encoder layers 1... (and of the final encoder LayerNorm), [B*Ss, D].
    let encoderCarry = FloatBuffer()
    /// Input of decoder layers 1... (and of the final decoder LayerNorm), [B*St, D].
    let decoderCarry = FloatBuffer()
    /// The decoder layer whose Float32 state `shared` still holds from forward (the last one run):
    /// it is neither packed nor unpacked. Cleared as soon as anything else writes into `shared`.
    var liveDecoderLayer: Int?

    init(encoderLayers: Int, decoderLayers: Int) {
        encoder = (0..<encoderLayers).map { _ in PackedLayerState() }
        decoder = (0..<decoderLayers).map { _ in PackedLayerState() }
    }

    /// Forgets every packed layer (a new forward begins).
    func invalidate() {
        for layer in encoder + decoder { layer.isValid = false }
        liveDecoderLayer = nil
    }

    /// Packs what layer `state`'s backward reads from `shared`, except its `output` (the next
    /// layer's input, packed as such by `carry`).
    func pack(_ state: PackedLayerState, decoder: Bool, output: UnsafePointer<Float>) {
        if state.values.isEmpty {
            // Which buffers a layer leaves for backward never changes: list them once.
            let (values, statistics) = shared.backwardState(decoder: decoder)
            state.values = values.filter { UnsafePointer($0.pointer) != output }
            state.addresses = state.values.map(\.pointer)
            state.halves = state.values.map { _ in HalfBuffer() }
            state.statisticsSources = statistics
            state.statistics = statistics.map { _ in FloatBuffer() }
        }
        for (k, buffer) in state.values.enumerated() {
            state.addresses[k] = buffer.pointer
            state.halves[k].store(buffer.pointer, count: buffer.count)
        }
        for (buffer, copy) in zip(state.statisticsSources, state.statistics) {
            copy.resize(buffer.count)
            copy.pointer.update(from: buffer.pointer, count: buffer.count)
        }
        state.isValid = true
    }

    /// Unpacks layer `state` into `shared`. The buffers must still be where the layer's forward
    /// found them: `reserve` before the forward guarantees that no later layer moved them.
    func unpack(_ state: PackedLayerState) {
        precondition(state.isValid, "Float16 activations: backward without the forward that stashed this layer")
        for (k, buffer) in state.values.enumerated() {
            let half = state.halves[k]
            buffer.resize(half.count)
            precondition(buffer.pointer == state.addresses[k], "Float16 activations: a stashed buffer moved")
            half.load(into: buffer.pointer)
        }
        for (buffer, copy) in zip(state.statisticsSources, state.statistics) {
            buffer.resize(copy.count)
            buffer.pointer.update(from: copy.pointer, count: copy.count)
        }
    }

    /// Copies a layer's `output` ([count] floats, inside `shared`) to the stack's carry buffer, which
    /// the next layer (or the final LayerNorm) reads; when a next layer exists, also packs it as
    /// that layer's input.
    func carry(_ output: UnsafePointer<Float>, count: Int, into carry: FloatBuffer,
               nextLayer: PackedLayerState?) -> UnsafePointer<Float> {
        carry.resize(count)
        carry.pointer.update(from: output, count: count)
        nextLayer?.input.store(output, count: count)
        return UnsafePointer(carry.pointer)
    }

    /// Bytes allocated by the shared stash, the carries and every packed layer.
    var allocatedBytes: Int {
        (encoder + decoder).reduce(shared.allocatedBytes + encoderCarry.allocatedBytes + decoderCarry.allocatedBytes) {
            $0 + $1.allocatedBytes
        }
    }
}

/// One layer's stash between its forward and its backward under Float16 activations.
final class PackedLayerState {
    /// The shared stash's buffers this layer's backward reads, their addresses in forward, and
    /// their Float16 copies (parallel arrays).
    var values: [FloatBuffer] = []
    var addresses: [UnsafeMutablePointer<Float>] = []
    var halves: [HalfBuffer] = []
    /// LayerNorm mean and rstd (Float32 copies) and the shared buffers they came from.
    var statistics: [FloatBuffer] = []
    var statisticsSources: [FloatBuffer] = []
    /// The layer's input in Float16 (unused for layer 0, whose input is the embedding output).
    let input = HalfBuffer()
    /// Set by `pack`, cleared when a new forward begins.
    var isValid = false

    var allocatedBytes: Int {
        halves.reduce(input.allocatedBytes) { $0 + $1.allocatedBytes } + statistics.reduce(0) { $0 + $1.allocatedBytes }
    }
}
