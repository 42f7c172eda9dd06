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
    /// `liveDecoderLayer` as backward found it.
    private var liveInBackward: Int?
    /// Whether the running forward packs for a backward (not for `encode`).
    private var packing = true
    private let heads: Int, dModel: Int, dFF: Int

    init(config c: ModelConfig) {
        encoder = (0..<c.encoderLayers).map { _ in PackedLayerState() }
        decoder = (0..<c.decoderLayers).map { _ in PackedLayerState() }
        heads = c.heads
        dModel = c.dModel
        dFF = c.dFF
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
    func carry(
        _ output: UnsafePointer<Float>, count: Int, into carry: FloatBuffer,
        nextLayer: PackedLayerState?
    ) -> UnsafePointer<Float> {
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

extension Float16ActivationStash: MemoryPlan {
    func stash(forLayer i: Int, of stack: LayerStack) -> LayerActivations { shared }

    func beginForward(rows: Int, longest: Int, backward: Bool) {
        invalidate()
        packing = backward
        // The encoder's layers record addresses in the shared stash for their backward: grow it
        // now for the larger stack, so that the decoder never moves it.
        if backward { shared.reserve(rows: rows, probabilities: rows * heads * longest, dModel: dModel, dFF: dFF) }
    }

    func afterForward(layer i: Int, of stack: LayerStack, output: UnsafePointer<Float>, count: Int) -> UnsafePointer<
        Float
    > {
        let states = stack == .encoder ? encoder : decoder
        let last = i == states.count - 1
        if stack == .encoder {
            if packing { pack(states[i], decoder: false, output: output) }
        } else if !last {
            pack(states[i], decoder: true, output: output)
        }
        // The last decoder layer's state stays live in the shared stash for the first backward.
        if stack == .decoder && last { liveDecoderLayer = i }
        let next = !last && (packing || stack == .decoder) ? states[i + 1] : nil
        return carry(output, count: count, into: stack == .encoder ? encoderCarry : decoderCarry, nextLayer: next)
    }

    func beginBackward() {
        liveInBackward = liveDecoderLayer
        liveDecoderLayer = nil
    }

    func beforeBackward(
        layer i: Int, of stack: LayerStack, embedded: UnsafePointer<Float>, restore: () -> Void,
        recompute: (UnsafePointer<Float>) -> Void
    ) {
        let states = stack == .encoder ? encoder : decoder
        // The final LayerNorm (or the layer above) has read the carry: it now takes this layer's input back.
        if i > 0 { states[i].input.load(into: (stack == .encoder ? encoderCarry : decoderCarry).pointer) }
        if stack == .decoder && i == liveInBackward { return }
        unpack(states[i])
        restore()
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
