/// One named tensor inside the flat parameter arena.
public struct ParameterEntry: Sendable, Equatable {
    /// The name in PyTorch's `nn.Transformer(batch_first=True)` state_dict.
    public let name: String
    /// Shape as PyTorch stores it (`[out, in]` for weights).
    public let shape: [Int]
    /// Offset in elements from the start of the arena.
    public let offset: Int
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// AdamW weight decay applies to matrices only (rank >= 2), not biases or LayerNorm.
    package var decays: Bool { shape.count >= 2 }
}

/// The order and placement of every parameter in one contiguous arena.
///
/// Parameters and gradients are each a single buffer laid out by this table, so the all-reduce,
/// the optimizer, checkpoints and Float16 copies are single loops over one buffer. The order is
/// PyTorch's state_dict order, which makes checkpoints line up with `nn.Transformer`.
public struct ParameterLayout: Sendable, Equatable {
    /// Every parameter, in state_dict order.
    public private(set) var entries: [ParameterEntry] = []
    /// Elements of the arena (a tied embedding counted once).
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    /// The layout of `nn.Transformer`'s state_dict for this architecture.
    public init(config c: ModelConfig) {
        let d = c.dModel, f = c.dFF
        add("embedding.weight", [c.vocabSize, d])
        if c.positional == .learned { add("positional.weight", [c.maxLen, d]) }
        for i in 0..<c.encoderLayers {
            let p = "encoder.layers.\(i)."
            addAttention(p + "self_attn", d)
            addFeedForward(p, d, f)
            for n in 1...2 { addNorm(p + "norm\(n)", d) }
        }
        addNorm("encoder.norm", d)
        for i in 0..<c.decoderLayers {
            let p = "decoder.layers.\(i)."
            addAttention(p + "self_attn", d)
            addAttention(p + "multihead_attn", d)
            addFeedForward(p, d, f)
            for n in 1...3 { addNorm(p + "norm\(n)", d) }
        }
        addNorm("decoder.norm", d)
        if !c.tieEmbeddings { add("generator.weight", [c.vocabSize, d]) }
    }

    private mutating func add(_ name: String, _ shape: [Int]) {
        let e = ParameterEntry(name: name, shape: shape, offset: totalCount)
        index[name] = entries.count
        entries.append(e)
        // Keep every tensor 16-float aligned (64 bytes) so vector loops and BLAS see aligned rows.
        totalCount += (e.count + 15) / 16 * 16
    }

    private mutating func addAttention(_ p: String, _ d: Int) {
        add(p + ".in_proj_weight", [3 * d, d])
        add(p + ".in_proj_bias", [3 * d])
        add(p + ".out_proj.weight", [d, d])
        add(p + ".out_proj.bias", [d])
    }

    private mutating func addFeedForward(_ p: String, _ d: Int, _ f: Int) {
        add(p + "linear1.weight", [f, d])
        add(p + "linear1.bias", [f])
        add(p + "linear2.weight", [d, f])
        add(p + "linear2.bias", [d])
    }

    private mutating func addNorm(_ p: String, _ d: Int) {
        add(p + ".weight", [d])
        add(p + ".bias", [d])
    }

    /// The parameter with that state_dict name, or nil.
    public subscript(name: String) -> ParameterEntry? { index[name].map { entries[$0] } }

    /// Offset of a parameter the model itself registered; a missing name is a programming error.
    package func offset(_ name: String) -> Int {
        guard let e = self[name] else { preconditionFailure("no parameter named \(name)") }
        return e.offset
    }

    /// Number of real parameters (without alignment padding).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }
}
