import TensorCore

/// Batched greedy decoding with the KV cache; each row stops at its own EOS.
public struct GreedyDecoder {
    package let decoder: IncrementalDecoder
    /// Benchmarks only: keep stepping after every row has predicted EOS, so a decode always runs
    /// `maxLength` steps (each row's output still ends at its first EOS).
    package var runsToMaxLength = false

    /// Greedy decoding with `model` (evaluation mode, no dropout).
    public init(model: Transformer) { decoder = IncrementalDecoder(model: model) }

    /// Translates each source (token ids without BOS/EOS) into at most `maxLength` tokens
    /// (excluding EOS; at most `model.config.maxLen`). Sources are padded into one batch.
    public func decode(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [[Int32]] {
        try Parallel.latencyBound { () throws(ModelInputError) in try greedy(sources, maxLength: maxLength) }
    }

    private func greedy(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [[Int32]] {
        guard !sources.isEmpty else { return [] }
        let b = sources.count
        let (padded, sourceLength) = paddedSourceBatch(sources)
        let steps = Swift.min(maxLength, decoder.model.config.maxLen)
        guard steps > 0 else { return [[Int32]](repeating: [], count: b) }
        try decoder.start(source: padded, batchSize: b, sourceLength: sourceLength, maxSteps: steps)
        var outputs = [[Int32]](repeating: [], count: b)
        var finished = [Bool](repeating: false, count: b)
        var tokens = [Int32](repeating: SpecialTokens.bos, count: b)
        let v = decoder.model.config.vocabSize
        for _ in 0..<steps {
            let logits = try decoder.step(tokens)
            for r in 0..<b {
                let row = logits + r * v
                var best = 0
                for j in 1..<v where row[j] > row[best] { best = j }
                tokens[r] = Int32(best)
                if finished[r] { continue }
                if Int32(best) == SpecialTokens.eos { finished[r] = true } else { outputs[r].append(Int32(best)) }
            }
            if !runsToMaxLength && finished.allSatisfy({ $0 }) { break }
        }
        return outputs
    }
}
