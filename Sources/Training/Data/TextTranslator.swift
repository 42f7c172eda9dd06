import TransformerModel

/// Translates sentences of text with a model and a tokenizer: encode, decode in batches of
/// similar length (greedy or beam search, with the KV cache), detokenize, and return the
/// translations in input order. Used by validation BLEU, `transformer translate` and `evaluate`.
public struct TextTranslator {
    /// The model decoding (evaluation mode, no dropout).
    public let model: Transformer
    /// Encodes the sources and decodes the outputs.
    public let tokenizer: BPETokenizer
    /// 1 = greedy decoding.
    public var beamWidth: Int
    /// GNMT length penalty alpha for beam search.
    public var lengthPenalty: Double
    /// Sentences decoded together.
    public var batchSize = 64
    /// Output budget in tokens (nil: 1.5x the longest source of the batch + 10, within max_len).
    public var maxLength: Int?

    /// Greedy decoding by default; `beamWidth` > 1 for beam search with GNMT penalty `lengthPenalty`.
    public init(model: Transformer, tokenizer: BPETokenizer, beamWidth: Int = 1, lengthPenalty: Double = 0.6) {
        self.model = model
        self.tokenizer = tokenizer
        self.beamWidth = beamWidth
        self.lengthPenalty = lengthPenalty
    }

    /// Output budget for a batch whose longest source has `longest` tokens: translations are
    /// rarely more than 1.5x longer, and never beyond the model's positions.
    package func maxOutputLength(longestSource longest: Int) -> Int {
        Self.outputBudget(longestSource: longest, maxLen: model.config.maxLen, maxLength: maxLength)
    }

    static func outputBudget(longestSource longest: Int, maxLen: Int, maxLength: Int?) -> Int {
        Swift.min(maxLen, maxLength ?? (longest + longest / 2 + 10))
    }

    /// Translates token-id sources; sources longer than `max_len` are cut to it.
    public func translate(ids sources: [[Int32]]) throws -> [[Int32]] {
        let greedy = beamWidth == 1 ? GreedyDecoder(model: model) : nil
        let beam =
            beamWidth > 1
            ? try BeamSearchDecoder(model: model, beamWidth: beamWidth, lengthPenalty: lengthPenalty) : nil
        return try inBatches(sources, empty: []) { batch, steps in
            try greedy?.decode(batch, maxLength: steps) ?? beam?.decode(batch, maxLength: steps) ?? []
        }
    }

    /// The `count` best beam-search hypotheses of each token-id source, best first (see
    /// `BeamSearchDecoder.nBest`), batched exactly as `translate(ids:)`, so with the same beam
    /// width the first hypothesis of each source is its `translate(ids:)` output.
    public func nBest(ids sources: [[Int32]], count: Int) throws -> [[BeamHypothesis]] {
        let beam = try BeamSearchDecoder(model: model, beamWidth: beamWidth, lengthPenalty: lengthPenalty)
        return try inBatches(sources, empty: []) { batch, steps in try beam.nBest(batch, maxLength: steps, count: count)
        }
    }

    /// The batches `translate(ids:)` and `nBest` decode, in the order they decode them.
    package func batches(of sources: [[Int32]]) -> [TranslationBatch] {
        Self.batches(of: sources, maxLen: model.config.maxLen, batchSize: batchSize, maxLength: maxLength)
    }

    /// Groups sources into batches of similar length: each source cut to `maxLen`, `batchSize` at
    /// a time, shortest first (ties in input order), each batch with its output budget. A pure
    /// function of its arguments, so another process plans the same batches (validation splits
    /// them over workers).
    package static func batches(of sources: [[Int32]], maxLen: Int, batchSize: Int = 64, maxLength: Int? = nil)
        -> [TranslationBatch]
    {
        let clipped = sources.map { $0.count > maxLen ? Array($0.prefix(maxLen)) : $0 }
        let order = clipped.indices.sorted {
            clipped[$0].count != clipped[$1].count ? clipped[$0].count < clipped[$1].count : $0 < $1
        }
        let size = Swift.max(1, batchSize)
        return stride(from: 0, to: order.count, by: size).map { start in
            let indices = Array(order[start..<Swift.min(order.count, start + size)])
            let batch = indices.map { clipped[$0] }
            return TranslationBatch(
                indices: indices, sources: batch,
                outputBudget: outputBudget(
                    longestSource: batch.map(\.count).max() ?? 1, maxLen: maxLen, maxLength: maxLength))
        }
    }

    /// Decodes `batches(of: sources)` one after the other and returns the results in input order.
    private func inBatches<Output>(
        _ sources: [[Int32]], empty: Output,
        _ decode: ([[Int32]], Int) throws -> [Output]
    ) throws -> [Output] {
        try Self.inBatches(
            sources, maxLen: model.config.maxLen, batchSize: batchSize, maxLength: maxLength, empty: empty, decode)
    }

    /// Decodes `batches(of:maxLen:batchSize:maxLength:)` one after the other (`decode(sources,
    /// outputBudget)`) and returns the results in input order: a long input never becomes one
    /// batch whose KV cache holds every sentence at once.
    package static func inBatches<Output>(
        _ sources: [[Int32]], maxLen: Int, batchSize: Int, maxLength: Int?, empty: Output,
        _ decode: ([[Int32]], Int) throws -> [Output]
    ) throws -> [Output] {
        var outputs = [Output](repeating: empty, count: sources.count)
        for batch in batches(of: sources, maxLen: maxLen, batchSize: batchSize, maxLength: maxLength) {
            let decoded = try decode(batch.sources, batch.outputBudget)
            for (k, i) in batch.indices.enumerated() where k < decoded.count { outputs[i] = decoded[k] }
        }
        return outputs
    }

    /// Translates sentences of text.
    public func translate(_ sentences: [String]) throws -> [String] {
        try translate(ids: sentences.map { tokenizer.encode($0) }).map { tokenizer.decode($0) }
    }
}

/// Sources decoded together, and where their results go.
package struct TranslationBatch: Sendable, Equatable {
    /// Positions of the batch's sources in the input, in batch order.
    package var indices: [Int]
    /// The sources, cut to the model's `max_len`.
    package var sources: [[Int32]]
    /// Most tokens a translation in this batch may have.
    package var outputBudget: Int
}
