import TensorCore

/// Runs the decoder one position at a time with a KV cache, for batched generation.
///
/// Self-attention keys and values of every generated position are appended to a per-layer cache;
/// cross-attention keys and values are projected from the encoder memory once per source batch.
/// Each step therefore costs O(t) attention work instead of recomputing the whole prefix, and its
/// logits equal those of a full forward over the same prefix: every step runs the layers' own
/// forward code (`DecoderLayer.step`), bit for bit equal in `DecodingTests` (to Float32 rounding
/// in general, should a BLAS sum a product of other shape in another order).
/// For beam search, `start(..., repeats: K)` gives every source K rows and `reorder(parents:)`
/// lets a row continue another row's history between steps.
package final class IncrementalDecoder {
    package let model: Transformer
    private let d: Int
    private var batch = 0, sourceLength = 0, capacity = 0
    /// Number of positions decoded so far.
    package private(set) var position = 0
    private var memoryMask: UnsafePointer<Bool>?
    /// One per decoder layer: its self-attention keys and values so far and the memory's.
    private var caches: [KeyValueCache] = []
    private let repeatedMask = MaskBuffer(), reorderScratch = FloatBuffer()
    private var savedSlot: [Int] = [], savedRows: [Int] = []
    /// [B, V] logits of the last step.
    package let logits = FloatBuffer()

    package init(model: Transformer) {
        self.model = model
        d = model.config.dModel
    }

    /// Encodes a padded source batch and resets the caches for up to `maxSteps` positions.
    ///
    /// With `repeats` K > 1 every source is encoded once and its cross-attention keys/values and
    /// key mask are copied to K consecutive decoder rows (row `s * K + k`), so a beam search runs
    /// B*K hypotheses as one batch without encoding each source K times.
    package func start(
        source: [Int32], batchSize: Int, sourceLength: Int, maxSteps: Int,
        repeats: Int = 1
    ) throws(ModelInputError) {
        guard maxSteps <= model.config.maxLen else {
            throw .sequenceTooLong(sequence: "target", length: maxSteps, maxLen: model.config.maxLen)
        }
        guard repeats >= 1 else { throw .shapeMismatch(sequence: "decoder repeats", expected: 1, actual: repeats) }
        let (memory, mask) = try model.encode(source: source, batchSize: batchSize, sourceLength: sourceLength)
        batch = batchSize * repeats
        self.sourceLength = sourceLength
        capacity = maxSteps
        position = 0
        let block = sourceLength * 2 * d
        if repeats == 1 {
            memoryMask = mask
        } else {
            repeatedMask.fill(repeating: mask, sequences: batchSize, length: sourceLength, repeats: repeats)
            memoryMask = UnsafePointer(repeatedMask.pointer)
        }
        while caches.count < model.decoderLayers.count { caches.append(KeyValueCache()) }
        for (layer, cache) in zip(model.decoderLayers, caches) {
            cache.reset(rows: batch, capacity: capacity, sourceLength: sourceLength, dModel: d)
            let kv = cache.crossKeyValues.pointer
            layer.crossAttention.projectKeyValues(memory, rows: batchSize * sourceLength, into: kv)
            guard repeats > 1 else { continue }
            // Spread in place from the last source backwards so no block is overwritten before it is copied.
            for s in stride(from: batchSize - 1, through: 0, by: -1) {
                for k in stride(from: repeats - 1, through: 0, by: -1) where s * repeats + k != s {
                    (kv + (s * repeats + k) * block).update(from: kv + s * block, count: block)
                }
            }
        }
    }

    /// Number of decoder rows (sources x repeats) of the current batch.
    package var rows: Int { batch }

    /// Makes row r continue the history of row `parents[r]` (the beam-search reorder between steps).
    ///
    /// Only rows whose parent differs from themselves are written; parents that are themselves
    /// overwritten are saved first, so the cost is proportional to the rows that change, times the
    /// positions decoded so far.
    package func reorder(parents: UnsafeBufferPointer<Int32>) throws(ModelInputError) {
        guard parents.count == batch else {
            throw .shapeMismatch(sequence: "reorder parents", expected: batch, actual: parents.count)
        }
        guard position > 0 else { return }
        savedSlot.removeAll(keepingCapacity: true)
        savedSlot.append(contentsOf: repeatElement(-1, count: batch))
        savedRows.removeAll(keepingCapacity: true)
        for r in 0..<batch {
            let p = Int(parents[r])
            precondition(p >= 0 && p < batch, "reorder parent \(p) outside [0, \(batch))")
            // A parent must be saved when another row copies it and its own row is rewritten.
            if p != r && Int(parents[p]) != p && savedSlot[p] < 0 {
                savedSlot[p] = savedRows.count
                savedRows.append(p)
            }
        }
        let span = position * 2 * d, rowStride = capacity * 2 * d
        reorderScratch.resize(Swift.max(1, savedRows.count * span))
        let scratch = reorderScratch.pointer
        for cache in caches.prefix(model.decoderLayers.count) {
            let c = cache.selfKeyValues.pointer
            for (slot, p) in savedRows.enumerated() {
                (scratch + slot * span).update(from: c + p * rowStride, count: span)
            }
            for r in 0..<batch {
                let p = Int(parents[r])
                guard p != r else { continue }
                let from =
                    savedSlot[p] >= 0 ? UnsafePointer(scratch + savedSlot[p] * span) : UnsafePointer(c + p * rowStride)
                (c + r * rowStride).update(from: from, count: span)
            }
        }
    }

    /// Feeds one token per sequence (`tokens.count == batch`) at the next position and returns the
    /// logits [B, V] for the following token.
    @discardableResult
    package func step(_ tokens: [Int32]) throws(ModelInputError) -> UnsafeMutablePointer<Float> {
        guard tokens.count == batch else {
            throw .shapeMismatch(sequence: "step tokens", expected: batch, actual: tokens.count)
        }
        guard position < capacity else {
            throw .sequenceTooLong(sequence: "target", length: position + 1, maxLen: capacity)
        }
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= model.config.vocabSize {
            throw .tokenOutOfRange(sequence: "target", index: i, token: t, vocabSize: model.config.vocabSize)
        }
        guard let memoryMask else { preconditionFailure("IncrementalDecoder.step before start") }
        // The training forward's own layers, one position at a time: decoding cannot drift from it.
        model.discardForward()
        var x = tokens.withUnsafeBufferPointer { tok in
            UnsafePointer(
                model.decoderEmbedding.forward(
                    tok.baseAddress!, batch: batch, length: 1, positionOffset: position,
                    dropout: .disabled))
        }
        for (layer, cache) in zip(model.decoderLayers, caches) {
            x = layer.step(x, batch: batch, position: position, cache: cache, sourceMask: memoryMask)
        }
        model.decoderHead(x, rows: batch, logits: logits)
        position += 1
        return logits.pointer
    }
}
