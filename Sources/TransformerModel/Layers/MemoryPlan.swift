import TensorCore

/// The two stacks of layers a memory plan serves.
enum LayerStack { case encoder, decoder }

/// Where the activations a layer's backward reads live between its forward and its backward.
///
/// `Transformer.forward` and `backward` are plain loops over layers that call the plan at three
/// points: before a forward, after layer i's forward, before layer i's backward. A plan decides
/// which stash each layer computes in and what it keeps in between: `PerLayerStashes` (every
/// layer its own stash), `ActivationCheckpoints` (layer inputs only, recomputing each layer
/// before its backward) and `Float16ActivationStash` (Float16 copies of each layer's stash). A
/// new plan (offloading, say) is one new conforming type.
protocol MemoryPlan: AnyObject {
    /// The stash layer `i` of `stack` computes in (its own, or one all layers share).
    func stash(forLayer i: Int, of stack: LayerStack) -> LayerActivations
    /// A forward of `rows` rows per stack at most (`longest` positions per sequence) begins; a
    /// backward follows unless `backward` is false (`encode`, evaluation).
    func beginForward(rows: Int, longest: Int, backward: Bool)
    /// Called with layer i's `output` ([count] floats) right after its forward; returns where the
    /// next layer (or the stack's final LayerNorm) reads its input.
    func afterForward(layer i: Int, of stack: LayerStack, output: UnsafePointer<Float>, count: Int) -> UnsafePointer<
        Float
    >
    /// Called once before the first layer's backward.
    func beginBackward()
    /// Makes layer i's stash what its forward left, right before its backward. `embedded` is the
    /// stack's embedding output (layer 0's input); `restore` rebuilds the layer's dropped-out
    /// probabilities; `recompute` runs the layer's forward again from a given input.
    func beforeBackward(
        layer i: Int, of stack: LayerStack, embedded: UnsafePointer<Float>, restore: () -> Void,
        recompute: (UnsafePointer<Float>) -> Void)
    /// Bytes allocated by the layer stashes and whatever the plan keeps between forward and backward.
    var allocatedBytes: Int { get }
}

/// The plain plan: every layer keeps its own stash from forward to backward (fastest, most memory).
final class PerLayerStashes: MemoryPlan {
    let encoder: [LayerActivations]
    let decoder: [LayerActivations]

    init(encoderLayers: Int, decoderLayers: Int) {
        encoder = (0..<encoderLayers).map { _ in LayerActivations() }
        decoder = (0..<decoderLayers).map { _ in LayerActivations() }
    }

    func stash(forLayer i: Int, of stack: LayerStack) -> LayerActivations {
        stack == .encoder ? encoder[i] : decoder[i]
    }
    func beginForward(rows: Int, longest: Int, backward: Bool) {}
    func afterForward(layer i: Int, of stack: LayerStack, output: UnsafePointer<Float>, count: Int) -> UnsafePointer<
        Float
    > {
        output
    }
    func beginBackward() {}
    func beforeBackward(
        layer i: Int, of stack: LayerStack, embedded: UnsafePointer<Float>, restore: () -> Void,
        recompute: (UnsafePointer<Float>) -> Void
    ) {}

    var allocatedBytes: Int { (encoder + decoder).reduce(0) { $0 + $1.allocatedBytes } }
}
