/// Where LayerNorm sits in each sublayer: `pre` (x + f(LN(x))) or `post` (LN(x + f(x)), the paper's).
public enum NormPlacement: String, Sendable, Equatable, CaseIterable { case pre, post }

/// Fixed sinusoidal table or learned position embeddings.
public enum PositionalKind: String, Sendable, Equatable, CaseIterable { case sinusoidal, learned, none }

/// Special token ids, shared by every tokenizer and task.
public enum SpecialTokens {
    /// `<pad>`: padding, never attended to and never a target.
    public static let pad: Int32 = 0
    /// `<s>`: starts every decoder input.
    public static let bos: Int32 = 1
    /// `</s>`: ends every target.
    public static let eos: Int32 = 2
    /// `<unk>`: a symbol outside the vocabulary.
    public static let unk: Int32 = 3
    /// Number of special tokens; real symbols start at this id.
    public static let count = 4
}

/// The architecture of one encoder-decoder Transformer. Validated by the config loader
/// (`Training.RunConfig`); the model trusts it.
public struct ModelConfig: Sendable, Equatable {
    /// Tokens of the shared source/target vocabulary, special tokens included.
    public var vocabSize: Int
    /// Width of the residual stream (embedding size).
    public var dModel: Int
    /// Attention heads per attention block; divides `dModel`.
    public var heads: Int
    /// Hidden width of each feed-forward block.
    public var dFF: Int
    /// Number of encoder layers.
    public var encoderLayers: Int
    /// Number of decoder layers.
    public var decoderLayers: Int
    /// Dropout rate in training, in [0, 1).
    public var dropout: Float
    /// Longest source or target sequence, BOS/EOS included.
    public var maxLen: Int
    /// Where LayerNorm sits (pre- or post-norm).
    public var norm: NormPlacement
    /// One embedding shared by encoder, decoder and output projection (else each has its own).
    public var tieEmbeddings: Bool
    /// `none` exists for tests (permutation equivariance); configs use sinusoidal or learned.
    public var positional: PositionalKind

    /// A model architecture; the config loader validates the values, the model trusts them.
    public init(
        vocabSize: Int, dModel: Int, heads: Int, dFF: Int, encoderLayers: Int, decoderLayers: Int,
        dropout: Float = 0.1, maxLen: Int = 64, norm: NormPlacement = .pre, tieEmbeddings: Bool = true,
        positional: PositionalKind = .sinusoidal
    ) {
        self.vocabSize = vocabSize
        self.dModel = dModel
        self.heads = heads
        self.dFF = dFF
        self.encoderLayers = encoderLayers
        self.decoderLayers = decoderLayers
        self.dropout = dropout
        self.maxLen = maxLen
        self.norm = norm
        self.tieEmbeddings = tieEmbeddings
        self.positional = positional
    }

    /// Width of one attention head (`dModel / heads`).
    public var headDim: Int { dModel / heads }
}
