import TensorCore

/// The encoder-decoder Transformer of Vaswani et al. (2017), laid out like
/// `torch.nn.Transformer(batch_first=True)` with a shared embedding and a tied output projection.
///
/// One instance is one model replica: its parameters and gradients live in `arena`, its
/// activations in buffers that are reused step after step. `forward` returns the logits buffer;
/// the loss overwrites it with d(loss)/d(logits) and `backward` accumulates into the gradients.
public final class Transformer {
    /// The architecture this replica was built for.
    public let config: ModelConfig
    /// Every parameter and gradient in one buffer each; `arena.layout` names them (PyTorch order).
    public let arena: ParameterArena
    let encoderEmbedding: Embedding
    let decoderEmbedding: Embedding
    let encoderLayers: [EncoderLayer]
    let decoderLayers: [DecoderLayer]
    let encoderNorm: LayerNorm
    let decoderNorm: LayerNorm
    let generator: ParameterRef
    let workspace = Workspace()
    /// [B*St, V]: logits after `forward`, then whatever the loss wrote (the logits' gradient).
    public let logits = FloatBuffer()
    private let sourceMask = MaskBuffer(), targetMask = MaskBuffer()
    private var sourceTokens: [Int32] = [], targetTokens: [Int32] = []
    private var batch = 0, sourceLength = 0, targetLength = 0
    private var memory: UnsafePointer<Float>?
    private var decoderOutput: UnsafePointer<Float>?
    /// The last forward's dropout, reused when checkpointing recomputes a layer.
    private var dropout = DropoutContext.disabled
    /// Present while activation checkpointing is on.
    private var checkpoints: ActivationCheckpoints?
    /// Present while Float16 activations are on (and used only while checkpointing is off).
    private var halfStash: Float16ActivationStash?
    /// The memory plan in use: checkpointing's, else the Float16 stash, else per-layer stashes.
    private var plan: any MemoryPlan

    /// Activation (gradient) checkpointing. Forward keeps only each layer's input, all layers share
    /// one activation stash, and backward recomputes each layer's forward just before its backward
    /// (see `ActivationCheckpoints`). Gradients are bitwise those of the plain path; activation
    /// memory drops from every layer's stash to one, for about one more forward pass of the layers
    /// per step. Off by default. Change it between steps, not between a forward and its backward.
    package var activationCheckpointing: Bool {
        get { checkpoints != nil }
        set {
            guard newValue != activationCheckpointing else { return }
            checkpoints =
                newValue
                ? ActivationCheckpoints(
                    encoderLayers: encoderLayers.count,
                    decoderLayers: decoderLayers.count) : nil
            rebindStashes()
        }
    }

    /// Float16 storage of the activations stashed for backward (`training.float16.activations`).
    /// Each layer runs in one shared Float32 stash; what its backward reads is packed to Float16
    /// right after its forward and unpacked right before its backward (see
    /// `Float16ActivationStash`). Compute, softmax, LayerNorm statistics and accumulations stay
    /// Float32, so gradients differ from the Float32 path by the rounding of the stored values
    /// only. With `activationCheckpointing` also on, checkpointing's plan is used (it stores no
    /// layer stash at all). Off by default. Change it between steps, not between a forward and
    /// its backward.
    package var float16Activations: Bool {
        get { halfStash != nil }
        set {
            guard newValue != float16Activations else { return }
            halfStash = newValue ? Float16ActivationStash(config: config) : nil
            rebindStashes()
        }
    }

    /// Points every layer at the stash of the plan in use. Swapping stashes frees the old ones
    /// (per-layer, or a shared one with its saved inputs or packed copies).
    private func rebindStashes() {
        if let checkpoints {
            plan = checkpoints
        } else if let halfStash {
            plan = halfStash
        } else {
            plan = PerLayerStashes(encoderLayers: encoderLayers.count, decoderLayers: decoderLayers.count)
        }
        for (i, layer) in encoderLayers.enumerated() { layer.use(plan.stash(forLayer: i, of: .encoder)) }
        for (i, layer) in decoderLayers.enumerated() { layer.use(plan.stash(forLayer: i, of: .decoder)) }
        halfStash?.invalidate()
        decoderOutput = nil  // what forward stashed is gone: backward needs a new forward
    }

    /// Bytes allocated in the buffers that hold forward activations: embedding outputs, the layer
    /// stashes (under checkpointing: the shared stash once plus the saved layer inputs; under
    /// Float16 activations: the shared stash, the carries and the packed copies), the final
    /// LayerNorms and the logits. Parameters, gradients and `workspaceBytes` are not included.
    package var activationBytes: Int {
        let layers = plan.allocatedBytes
        let own =
            [encoderEmbedding.output, decoderEmbedding.output, logits]
            + encoderNorm.activations.buffers + decoderNorm.activations.buffers
        return own.reduce(layers) { $0 + $1.allocatedBytes }
    }

    /// Bytes of the gradient scratch backward uses (one set for the whole model in either mode).
    package var workspaceBytes: Int { workspace.allocatedBytes }

    /// Builds the model and initialises it from `seed`: Xavier-uniform matrices, zero biases,
    /// LayerNorm gamma 1 and beta 0, embeddings N(0, D^-0.5).
    ///
    /// `float16Parameters` (a worker's replica under `training.float16.parameters`) stores the
    /// weight matrices in Float16 (see `ParameterArena`): they are converted to Float32 one matrix
    /// at a time when a layer uses them, so parameter memory about halves; compute and gradients
    /// stay Float32. Such a model has no `arena.values`: the trainer loads the master weights with
    /// `loadParameters(from:)` or `loadParameters(half:)`.
    public init(config c: ModelConfig, seed: UInt64, float16Parameters: Bool = false) {
        config = c
        let arena = ParameterArena(layout: ParameterLayout(config: c), float16: float16Parameters)
        self.arena = arena
        encoderEmbedding = Embedding(arena, config: c, site: DropoutSite.sourceEmbedding)
        decoderEmbedding = Embedding(arena, config: c, site: DropoutSite.targetEmbedding)
        encoderLayers = (0..<c.encoderLayers).map { EncoderLayer(arena, config: c, index: $0) }
        decoderLayers = (0..<c.decoderLayers).map { DecoderLayer(arena, config: c, index: $0) }
        encoderNorm = LayerNorm(arena, "encoder.norm", width: c.dModel)
        decoderNorm = LayerNorm(arena, "decoder.norm", width: c.dModel)
        generator = arena.ref(c.tieEmbeddings ? "embedding.weight" : "generator.weight")
        plan = PerLayerStashes(encoderLayers: c.encoderLayers, decoderLayers: c.decoderLayers)
        Transformer.initialise(arena, config: c, seed: seed)
        rebindStashes()
    }

    static func initialise(_ arena: ParameterArena, config c: ModelConfig, seed: UInt64) {
        let scratch = FloatBuffer()
        for (i, e) in arena.layout.entries.enumerated() {
            var rng = RandomStream(seed: seed, stream: 0x1_0000 + UInt64(i))
            scratch.resize(e.count)
            let p = scratch.pointer
            defer { arena.write(entry: i, from: p) }
            if e.name == "embedding.weight" {
                let std = 1 / Float(c.dModel).squareRoot()
                for j in 0..<e.count { p[j] = rng.normal() * std }
            } else if e.name == "positional.weight" {
                for j in 0..<e.count { p[j] = rng.normal() * 0.02 }
            } else if e.shape.count == 2 {
                let bound = (6 / Float(e.shape[0] + e.shape[1])).squareRoot()
                for j in 0..<e.count { p[j] = (2 * rng.uniform() - 1) * bound }
            } else {
                let isGamma = e.name.hasSuffix(".weight")
                p.update(repeating: isGamma ? 1 : 0, count: e.count)
            }
        }
    }

    /// Checks token ids and lengths before anything touches memory.
    package func validate(
        source: [Int32], targetInput: [Int32], batchSize: Int, sourceLength: Int,
        targetLength: Int, checkTargetShape: Bool = true
    ) throws(ModelInputError) {
        guard batchSize > 0, sourceLength > 0, targetLength > 0 else { throw .empty }
        for (name, tokens, len) in [("source", source, sourceLength), ("target", targetInput, targetLength)] {
            if name == "target" && !checkTargetShape { continue }
            if len > config.maxLen { throw .sequenceTooLong(sequence: name, length: len, maxLen: config.maxLen) }
            if tokens.count != batchSize * len {
                throw .shapeMismatch(sequence: name, expected: batchSize * len, actual: tokens.count)
            }
            for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= config.vocabSize {
                throw .tokenOutOfRange(sequence: name, index: i, token: t, vocabSize: config.vocabSize)
            }
        }
    }

    /// Runs encoder and decoder on a padded batch (PAD = 0) and returns the logits [B*St, V].
    /// Dropout is applied when `dropout.rate > 0` (training); pass `.disabled` for evaluation.
    @discardableResult
    public func forward(
        source: [Int32], targetInput: [Int32], batchSize: Int, sourceLength: Int, targetLength: Int,
        dropout: DropoutContext
    ) throws(ModelInputError) -> UnsafeMutablePointer<Float> {
        try validate(
            source: source, targetInput: targetInput, batchSize: batchSize, sourceLength: sourceLength,
            targetLength: targetLength)
        sourceTokens.removeAll(keepingCapacity: true)
        sourceTokens.append(contentsOf: source)
        targetTokens.removeAll(keepingCapacity: true)
        targetTokens.append(contentsOf: targetInput)
        batch = batchSize
        self.sourceLength = sourceLength
        self.targetLength = targetLength
        return sourceTokens.withUnsafeBufferPointer { src in
            targetTokens.withUnsafeBufferPointer { tgt in
                runForward(src.baseAddress!, tgt.baseAddress!, dropout: dropout)
            }
        }
    }

    private func runForward(
        _ src: UnsafePointer<Int32>, _ tgt: UnsafePointer<Int32>,
        dropout: DropoutContext
    ) -> UnsafeMutablePointer<Float> {
        let nt = batch * targetLength, longest = Swift.max(sourceLength, targetLength)
        self.dropout = dropout
        plan.beginForward(rows: batch * longest, longest: longest, backward: true)
        let mem = runEncoder(src, dropout: dropout)
        targetMask.fill(fromTokens: tgt, count: nt)
        var y = UnsafePointer(decoderEmbedding.forward(tgt, batch: batch, length: targetLength, dropout: dropout))
        for i in decoderLayers.indices {
            y = plan.afterForward(
                layer: i, of: .decoder, output: runDecoderLayer(i, y, memory: mem), count: nt * config.dModel)
        }
        decoderOutput = decoderHead(y, rows: nt, logits: logits)
        return logits.pointer
    }

    /// The decoder's final LayerNorm and the output projection of `y` [rows, D] into `out`
    /// [rows, V], shared by `forward` and incremental decoding. Returns the normalised rows (the
    /// output projection's input, which backward reads).
    @discardableResult
    func decoderHead(_ y: UnsafePointer<Float>, rows: Int, logits out: FloatBuffer) -> UnsafePointer<Float> {
        let normed = UnsafePointer(decoderNorm.forward(y, rows: rows))
        out.resize(rows * config.vocabSize)
        OutputProjection.forward(
            normed, rows: rows, weight: generator, vocabulary: config.vocabSize, width: config.dModel,
            output: out.pointer)
        return normed
    }

    /// Incremental decoding computes in the layers' stashes: the last forward can no longer be
    /// differentiated, so a `backward` before the next forward must stop rather than mix the two.
    func discardForward() { decoderOutput = nil }

    /// The encoder stack, after `plan.beginForward`.
    private func runEncoder(_ src: UnsafePointer<Int32>, dropout: DropoutContext) -> UnsafePointer<Float> {
        let ns = batch * sourceLength
        sourceMask.fill(fromTokens: src, count: ns)
        var x = UnsafePointer(encoderEmbedding.forward(src, batch: batch, length: sourceLength, dropout: dropout))
        for i in encoderLayers.indices {
            x = plan.afterForward(
                layer: i, of: .encoder, output: runEncoderLayer(i, x, dropout: dropout), count: ns * config.dModel)
        }
        let mem = UnsafePointer(encoderNorm.forward(x, rows: ns))
        memory = mem
        return mem
    }

    // One layer's forward, shared by the forward pass and checkpointing's recomputation so that
    // both see exactly the same arguments.
    private func runEncoderLayer(_ i: Int, _ x: UnsafePointer<Float>, dropout: DropoutContext) -> UnsafePointer<Float> {
        encoderLayers[i].forward(x, batch: batch, length: sourceLength, keyMask: sourceMask.pointer, dropout: dropout)
    }

    private func runDecoderLayer(_ i: Int, _ y: UnsafePointer<Float>, memory mem: UnsafePointer<Float>)
        -> UnsafePointer<Float>
    {
        decoderLayers[i].forward(
            y, memory: mem, batch: batch, targetLength: targetLength, sourceLength: sourceLength,
            targetMask: targetMask.pointer, sourceMask: sourceMask.pointer, dropout: dropout)
    }

    /// Runs only the encoder (evaluation mode) on a padded source batch and returns the memory
    /// [B*Ss, D], valid until the next call on this model, with its key mask [B*Ss].
    package func encode(source: [Int32], batchSize: Int, sourceLength: Int) throws(ModelInputError)
        -> (memory: UnsafePointer<Float>, mask: UnsafePointer<Bool>)
    {
        try validate(
            source: source, targetInput: [SpecialTokens.bos], batchSize: batchSize, sourceLength: sourceLength,
            targetLength: 1, checkTargetShape: false)
        sourceTokens.removeAll(keepingCapacity: true)
        sourceTokens.append(contentsOf: source)
        batch = batchSize
        self.sourceLength = sourceLength
        plan.beginForward(rows: batchSize * sourceLength, longest: sourceLength, backward: false)
        let mem = sourceTokens.withUnsafeBufferPointer { runEncoder($0.baseAddress!, dropout: .disabled) }
        return (mem, UnsafePointer(sourceMask.pointer))
    }

    /// Backpropagates the gradient the loss wrote into `logits`, accumulating into `arena.gradients`.
    package func backward() { backward(finalFrom: nil) }

    /// `backward`, calling `finalFrom(x)` each time the gradients at arena offsets >= x are final
    /// (no later part of this backward writes them), with decreasing x and last x = 0: a worker
    /// sends those gradient buckets while the rest of backward runs. Backward visits the arena
    /// from its end (PyTorch order: embeddings, encoder layers, encoder norm, decoder layers,
    /// decoder norm, generator), except for the shared embedding (and learned positions), which
    /// the output projection (tied), the decoder embedding and the encoder embedding all write:
    /// offset 0 is final only at the very end.
    package func backward(finalFrom: ((Int) -> Void)?) {
        // Each layer writes only the gradients of its own parameters, which sit from its first
        // entry up to the next layer's: once it is done, everything from that first entry is final.
        func done(_ prefix: String) {
            guard let finalFrom else { return }
            guard let entry = arena.layout.entries.first(where: { $0.name.hasPrefix(prefix) }) else {
                preconditionFailure("no parameter starts with \(prefix)")
            }
            finalFrom(entry.offset)
        }
        guard let decoderOutput, let memory else { preconditionFailure("Transformer.backward before forward") }
        let d = config.dModel, ns = batch * sourceLength, nt = batch * targetLength
        let ws = workspace
        ws.flow.resize(nt * d)
        ws.normInput.resize(nt * d, zero: true)
        OutputProjection.backward(
            logits.pointer, input: decoderOutput, rows: nt, weight: generator,
            vocabulary: config.vocabSize, width: d, inputGradient: ws.flow.pointer)
        if !config.tieEmbeddings { done("generator.") }
        decoderNorm.backward(ws.flow.pointer, into: ws.normInput.pointer)
        done("decoder.norm.")
        ws.flow.pointer.update(from: ws.normInput.pointer, count: nt * d)
        ws.memoryGradient.resize(ns * d, zero: true)
        plan.beginBackward()
        for i in decoderLayers.indices.reversed() {
            plan.beforeBackward(
                layer: i, of: .decoder, embedded: decoderEmbedding.output.pointer,
                restore: { decoderLayers[i].restoreDroppedProbabilities() },
                recompute: { _ = runDecoderLayer(i, $0, memory: memory) })
            decoderLayers[i].backward(ws.flow.pointer, memoryGradient: ws.memoryGradient.pointer, workspace: ws)
            done("decoder.layers.\(i).")
        }
        decoderEmbedding.backward(ws.flow.pointer)
        ws.flow.resize(ns * d, zero: true)
        encoderNorm.backward(ws.memoryGradient.pointer, into: ws.flow.pointer)
        done("encoder.norm.")
        for i in encoderLayers.indices.reversed() {
            plan.beforeBackward(
                layer: i, of: .encoder, embedded: encoderEmbedding.output.pointer,
                restore: { encoderLayers[i].restoreDroppedProbabilities() },
                recompute: { _ = runEncoderLayer(i, $0, dropout: dropout) })
            encoderLayers[i].backward(ws.flow.pointer, workspace: ws)
            done("encoder.layers.\(i).")
        }
        encoderEmbedding.backward(ws.flow.pointer)
        finalFrom?(0)
    }

    /// True when the weight matrices are stored in Float16 (set at `init`).
    public var float16Parameters: Bool { arena.isFloat16 }

    /// Bytes holding this replica's parameter values (see `ParameterArena.storageBytes`).
    package var parameterStorageBytes: Int { arena.storageBytes }

    /// Overwrites every parameter from Float32 values laid out by `arena.layout` (rounded to
    /// Float16 with `float16Parameters`). Call between steps.
    public func loadParameters(from source: UnsafePointer<Float>) { arena.loadParameters(from: source) }

    /// Overwrites every parameter from Float16 bits laid out by `arena.layout` (the Float16 weight
    /// broadcast): copied bit for bit with `float16Parameters`, converted exactly otherwise.
    package func loadParameters(half source: UnsafePointer<UInt16>) { arena.loadParameters(half: source) }

    /// Writes every parameter as Float32 laid out by `arena.layout` (`layout.totalCount` floats).
    public func readParameters(into destination: UnsafeMutablePointer<Float>) {
        arena.readParameters(into: destination)
    }

    /// Number of real parameters (a tied embedding counted once).
    public var parameterCount: Int { arena.layout.parameterCount }
}
