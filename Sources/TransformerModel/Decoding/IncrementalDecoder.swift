import TensorCore

/// Runs the decoder one position at a time with a KV cache, for batched generation.
///
/// Self-attention keys and values of every generated position are appended to a per-layer cache;
/// cross-attention keys and values are projected from the encoder memory once per source batch.
/// Each step therefore costs O(t) attention work instead of recomputing the whole prefix, and its
/// logits equal those of a full forward over the same prefix (to Float32 rounding).
public final class IncrementalDecoder {
    public let model: Transformer
    private let d: Int, f: Int, heads: Int
    private var batch = 0, sourceLength = 0, capacity = 0
    /// Number of positions decoded so far.
    public private(set) var position = 0
    private var memoryMask: UnsafePointer<Bool>?
    // Per decoder layer: self-attention cache [B, capacity, 2D] (K then V) and cross K/V [B*Ss, 2D].
    private var selfCache: [FloatBuffer] = []
    private var crossKeyValues: [FloatBuffer] = []
    // Step scratch, [B, .].
    private let x = FloatBuffer(), normed = FloatBuffer(), projected = FloatBuffer(), context = FloatBuffer()
    private let sublayer = FloatBuffer(), hidden = FloatBuffer(), probs = FloatBuffer()
    private let mean = FloatBuffer(), rstd = FloatBuffer()
    /// [B, V] logits of the last step.
    public let logits = FloatBuffer()

    public init(model: Transformer) {
        self.model = model
        d = model.config.dModel; f = model.config.dFF; heads = model.config.heads
    }

    /// Encodes a padded source batch and resets the caches for up to `maxSteps` positions.
    public func start(source: [Int32], batchSize: Int, sourceLength: Int, maxSteps: Int) throws(ModelInputError) {
        guard maxSteps <= model.config.maxLen else {
            throw .sequenceTooLong(sequence: "target", length: maxSteps, maxLen: model.config.maxLen)
        }
        let (memory, mask) = try model.encode(source: source, batchSize: batchSize, sourceLength: sourceLength)
        batch = batchSize; self.sourceLength = sourceLength; capacity = maxSteps; position = 0
        memoryMask = mask
        while selfCache.count < model.decoderLayers.count { selfCache.append(FloatBuffer()); crossKeyValues.append(FloatBuffer()) }
        for (i, layer) in model.decoderLayers.enumerated() {
            selfCache[i].resize(batch * capacity * 2 * d)
            let cross = layer.crossAttention
            crossKeyValues[i].resize(batch * sourceLength * 2 * d)
            Linear.forward(memory, rows: batch * sourceLength, inFeatures: d, outFeatures: 2 * d,
                           weight: cross.wIn.value + d * d, bias: cross.bIn.value + d, output: crossKeyValues[i].pointer)
        }
    }

    /// Feeds one token per sequence (`tokens.count == batch`) at the next position and returns the
    /// logits [B, V] for the following token.
    @discardableResult
    public func step(_ tokens: [Int32]) throws(ModelInputError) -> UnsafeMutablePointer<Float> {
        guard tokens.count == batch else { throw .shapeMismatch(sequence: "step tokens", expected: batch, actual: tokens.count) }
        guard position < capacity else { throw .sequenceTooLong(sequence: "target", length: position + 1, maxLen: capacity) }
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= model.config.vocabSize {
            throw .tokenOutOfRange(sequence: "target", index: i, token: t, vocabSize: model.config.vocabSize)
        }
        x.resize(batch * d)
        tokens.withUnsafeBufferPointer { tok in
            let e = model.decoderEmbedding.forward(tok.baseAddress!, batch: batch, length: 1, positionOffset: position,
                                                   dropout: .disabled)
            x.pointer.update(from: e, count: batch * d)
        }
        for (i, layer) in model.decoderLayers.enumerated() {
            residual(layer.block1) { y in selfAttention(layer.selfAttention, y, cache: selfCache[i]) }
            residual(layer.block2) { y in crossAttention(layer.crossAttention, y, keyValues: crossKeyValues[i]) }
            residual(layer.block3) { y in feedForward(layer.feedForward, y) }
        }
        layerNorm(model.decoderNorm, x.pointer, into: normed)
        logits.resize(batch * model.config.vocabSize)
        Linear.forward(normed.pointer, rows: batch, inFeatures: d, outFeatures: model.config.vocabSize,
                       weight: model.generator.value, bias: nil, output: logits.pointer)
        position += 1
        return logits.pointer
    }

    private func layerNorm(_ norm: LayerNorm, _ input: UnsafePointer<Float>, into out: FloatBuffer) {
        out.resize(batch * d); mean.resize(batch); rstd.resize(batch)
        LayerNormKernel.forward(input, rows: batch, width: d, gamma: norm.gamma.value, beta: norm.beta.value,
                                output: out.pointer, mean: mean.pointer, rstd: rstd.pointer)
    }

    /// x <- x + F(LN(x)) (pre) or x <- LN(x + F(x)) (post), on the step's rows.
    private func residual(_ block: Residual, _ sub: (UnsafePointer<Float>) -> UnsafeMutablePointer<Float>) {
        let n = batch * d, xp = x.pointer
        if block.placement == .pre {
            layerNorm(block.norm, xp, into: normed)
            let y = sub(normed.pointer)
            for i in 0..<n { xp[i] += y[i] }
        } else {
            let y = sub(xp)
            for i in 0..<n { xp[i] += y[i] }
            layerNorm(block.norm, xp, into: normed)
            xp.update(from: normed.pointer, count: n)
        }
    }

    private func selfAttention(_ a: MultiHeadAttention, _ input: UnsafePointer<Float>, cache: FloatBuffer) -> UnsafeMutablePointer<Float> {
        projected.resize(batch * 3 * d)
        Linear.forward(input, rows: batch, inFeatures: d, outFeatures: 3 * d, weight: a.wIn.value, bias: a.bIn.value,
                       output: projected.pointer)
        for b in 0..<batch {
            let row = cache.pointer + (b * capacity + position) * 2 * d
            row.update(from: projected.pointer + b * 3 * d + d, count: 2 * d)
        }
        var shape = AttentionShape(batch: batch, heads: heads, queryLength: 1, keyLength: position + 1, headDim: d / heads)
        shape.keyBatchRows = capacity
        return attend(a, q: projected.pointer, ldq: 3 * d, k: cache.pointer, v: cache.pointer + d, shape: shape, mask: nil)
    }

    private func crossAttention(_ a: MultiHeadAttention, _ input: UnsafePointer<Float>, keyValues: FloatBuffer) -> UnsafeMutablePointer<Float> {
        projected.resize(batch * d)
        Linear.forward(input, rows: batch, inFeatures: d, outFeatures: d, weight: a.wIn.value, bias: a.bIn.value,
                       output: projected.pointer)
        let shape = AttentionShape(batch: batch, heads: heads, queryLength: 1, keyLength: sourceLength, headDim: d / heads)
        return attend(a, q: projected.pointer, ldq: d, k: keyValues.pointer, v: keyValues.pointer + d, shape: shape, mask: memoryMask)
    }

    private func attend(_ a: MultiHeadAttention, q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        shape: AttentionShape, mask: UnsafePointer<Bool>?) -> UnsafeMutablePointer<Float> {
        probs.resize(shape.probabilityCount); context.resize(batch * d); sublayer.resize(batch * d)
        AttentionKernel.forward(q: q, ldq: ldq, k: k, ldk: 2 * d, v: v, ldv: 2 * d, shape: shape, keyMask: mask, causal: false,
                                probs: probs.pointer, dropped: probs.pointer, output: context.pointer, dropout: .disabled, site: 0)
        Linear.forward(context.pointer, rows: batch, inFeatures: d, outFeatures: d, weight: a.wOut.value, bias: a.bOut.value,
                       output: sublayer.pointer)
        return sublayer.pointer
    }

    private func feedForward(_ ffn: FeedForward, _ input: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        hidden.resize(batch * f); sublayer.resize(batch * d)
        Linear.forward(input, rows: batch, inFeatures: d, outFeatures: f, weight: ffn.w1.value, bias: ffn.b1.value,
                       output: hidden.pointer)
        let h = hidden.pointer
        for i in 0..<(batch * f) where h[i] < 0 { h[i] = 0 }
        Linear.forward(h, rows: batch, inFeatures: f, outFeatures: d, weight: ffn.w2.value, bias: ffn.b2.value,
                       output: sublayer.pointer)
        return sublayer.pointer
    }
}
