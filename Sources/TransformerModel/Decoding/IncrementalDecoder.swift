import TensorCore

/// Runs the decoder one position at a time with a KV cache, for batched generation.
///
/// Self-attention keys and values of every generated position are appended to a per-layer cache;
/// cross-attention keys and values are projected from the encoder memory once per source batch.
/// Each step therefore costs O(t) attention work instead of recomputing the whole prefix, and its
/// logits equal those of a full forward over the same prefix (to Float32 rounding).
/// For beam search, `start(..., repeats: K)` gives every source K rows and `reorder(parents:)`
/// lets a row continue another row's history between steps.
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
    private let repeatedMask = BoolBuffer(), reorderScratch = FloatBuffer()
    private var savedSlot: [Int] = [], savedRows: [Int] = []
    /// [B, V] logits of the last step.
    public let logits = FloatBuffer()

    public init(model: Transformer) {
        self.model = model
        d = model.config.dModel; f = model.config.dFF; heads = model.config.heads
    }

    /// Encodes a padded source batch and resets the caches for up to `maxSteps` positions.
    ///
    /// With `repeats` K > 1 every source is encoded once and its cross-attention keys/values and
    /// key mask are copied to K consecutive decoder rows (row `s * K + k`), so a beam search runs
    /// B*K hypotheses as one batch without encoding each source K times.
    public func start(source: [Int32], batchSize: Int, sourceLength: Int, maxSteps: Int,
                      repeats: Int = 1) throws(ModelInputError) {
        guard maxSteps <= model.config.maxLen else {
            throw .sequenceTooLong(sequence: "target", length: maxSteps, maxLen: model.config.maxLen)
        }
        guard repeats >= 1 else { throw .shapeMismatch(sequence: "decoder repeats", expected: 1, actual: repeats) }
        let (memory, mask) = try model.encode(source: source, batchSize: batchSize, sourceLength: sourceLength)
        batch = batchSize * repeats; self.sourceLength = sourceLength; capacity = maxSteps; position = 0
        let block = sourceLength * 2 * d
        if repeats == 1 {
            memoryMask = mask
        } else {
            repeatedMask.ensure(batch * sourceLength)
            for s in 0..<batchSize {
                for k in 0..<repeats {
                    (repeatedMask.pointer + (s * repeats + k) * sourceLength).update(from: mask + s * sourceLength, count: sourceLength)
                }
            }
            memoryMask = UnsafePointer(repeatedMask.pointer)
        }
        while selfCache.count < model.decoderLayers.count { selfCache.append(FloatBuffer()); crossKeyValues.append(FloatBuffer()) }
        for (i, layer) in model.decoderLayers.enumerated() {
            selfCache[i].resize(batch * capacity * 2 * d)
            let cross = layer.crossAttention
            crossKeyValues[i].resize(batch * block)
            Linear.forward(memory, rows: batchSize * sourceLength, inFeatures: d, outFeatures: 2 * d,
                           weight: cross.wIn.value + d * d, bias: cross.bIn.value + d, output: crossKeyValues[i].pointer)
            guard repeats > 1 else { continue }
            // Spread in place from the last source backwards so no block is overwritten before it is copied.
            let kv = crossKeyValues[i].pointer
            for s in stride(from: batchSize - 1, through: 0, by: -1) {
                for k in stride(from: repeats - 1, through: 0, by: -1) where s * repeats + k != s {
                    (kv + (s * repeats + k) * block).update(from: kv + s * block, count: block)
                }
            }
        }
    }

    /// Number of decoder rows (sources x repeats) of the current batch.
    public var rows: Int { batch }

    /// Makes row r continue the history of row `parents[r]` (the beam-search reorder between steps).
    ///
    /// Only rows whose parent differs from themselves are written; parents that are themselves
    /// overwritten are saved first, so the cost is proportional to the rows that change, times the
    /// positions decoded so far.
    public func reorder(parents: UnsafeBufferPointer<Int32>) throws(ModelInputError) {
        guard parents.count == batch else { throw .shapeMismatch(sequence: "reorder parents", expected: batch, actual: parents.count) }
        guard position > 0 else { return }
        savedSlot.removeAll(keepingCapacity: true)
        savedSlot.append(contentsOf: repeatElement(-1, count: batch))
        savedRows.removeAll(keepingCapacity: true)
        for r in 0..<batch {
            let p = Int(parents[r])
            precondition(p >= 0 && p < batch, "reorder parent \(p) outside [0, \(batch))")
            // A parent must be saved when another row copies it and its own row is rewritten.
            if p != r && Int(parents[p]) != p && savedSlot[p] < 0 { savedSlot[p] = savedRows.count; savedRows.append(p) }
        }
        let span = position * 2 * d, rowStride = capacity * 2 * d
        reorderScratch.resize(Swift.max(1, savedRows.count * span))
        let scratch = reorderScratch.pointer
        for cache in selfCache.prefix(model.decoderLayers.count) {
            let c = cache.pointer
            for (slot, p) in savedRows.enumerated() { (scratch + slot * span).update(from: c + p * rowStride, count: span) }
            for r in 0..<batch {
                let p = Int(parents[r])
                guard p != r else { continue }
                let from = savedSlot[p] >= 0 ? UnsafePointer(scratch + savedSlot[p] * span) : UnsafePointer(c + p * rowStride)
                (c + r * rowStride).update(from: from, count: span)
            }
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

/// A growable Bool buffer owned by the decoder (the repeated source key mask).
final class BoolBuffer {
    private(set) var pointer: UnsafeMutablePointer<Bool>
    private var capacity = 1

    init() { pointer = .allocate(capacity: 1) }
    deinit { pointer.deallocate() }

    func ensure(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        capacity = count
        pointer = .allocate(capacity: count)
    }
}
