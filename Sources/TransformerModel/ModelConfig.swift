/// Where LayerNorm sits in each sublayer: `pre` (x + f(LN(x))) or `post` (LN(x + f(x)), the paper's).
public enum NormPlacement: String, Sendable, Equatable, CaseIterable { case pre, post }

/// Fixed sinusoidal table or learned position embeddings.
public enum PositionalKind: String, Sendable, Equatable, CaseIterable { case sinusoidal, learned, none }

/// Special token ids, shared by every tokenizer and task.
public enum SpecialTokens {
    public static let pad: Int32 = 0
    public static let bos: Int32 = 1
    public static let eos: Int32 = 2
    public static let unk: Int32 = 3
    public static let count = 4
}

/// The architecture of one encoder-decoder Transformer. Validated by the config loader
/// (`Training.RunConfig`); the model trusts it.
public struct ModelConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var dModel: Int
    public var heads: Int
    public var dFF: Int
    public var encoderLayers: Int
    public var decoderLayers: Int
    public var dropout: Float
    public var maxLen: Int
    public var norm: NormPlacement
    public var tieEmbeddings: Bool
    /// `none` exists for tests (permutation equivariance); configs use sinusoidal or learned.
    public var positional: PositionalKind

    public init(vocabSize: Int, dModel: Int, heads: Int, dFF: Int, encoderLayers: Int, decoderLayers: Int,
                dropout: Float = 0.1, maxLen: Int = 64, norm: NormPlacement = .pre, tieEmbeddings: Bool = true,
                positional: PositionalKind = .sinusoidal) {
        self.vocabSize = vocabSize; self.dModel = dModel; self.heads = heads; self.dFF = dFF
        self.encoderLayers = encoderLayers; self.decoderLayers = decoderLayers; self.dropout = dropout
        self.maxLen = maxLen; self.norm = norm; self.tieEmbeddings = tieEmbeddings; self.positional = positional
    }

    public var headDim: Int { dModel / heads }
}
