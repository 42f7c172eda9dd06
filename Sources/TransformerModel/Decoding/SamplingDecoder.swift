import TensorCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Batched ancestral sampling with the KV cache, with temperature, top-k and nucleus (top-p)
/// restriction; each row stops at its own EOS.
///
/// Reproducible: the uniform number that picks sentence i's token at step t is Philox(seed) at
/// counter (t, i), so a result depends only on the seed, the model and the sources.
/// The restrictions only choose which tokens stay; the draw then walks the kept tokens in
/// vocabulary order, so `topK == vocabSize` or a nucleus holding every token gives exactly the
/// unrestricted result.
public struct SamplingDecoder {
    package let decoder: IncrementalDecoder
    /// Logits are divided by this before the softmax (> 0; below 1 sharpens, above 1 flattens).
    public let temperature: Float
    /// Keep only the k most likely tokens (ties: lower id first); 0 = no restriction.
    public let topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches topP; 1 = no restriction.
    /// The nucleus sorts the candidates (all V of them unless top-k restricts them first).
    public let topP: Float
    /// The Philox seed of the draws: same seed, model and sources give the same output.
    public let seed: UInt64
    private let workspace = SamplingWorkspace()

    /// - Throws: `DecodingError` for temperature <= 0, topK < 0 or topP outside (0, 1].
    public init(model: Transformer, temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64)
        throws(DecodingError)
    {
        guard temperature.isFinite, temperature > 0 else { throw .invalidTemperature(temperature) }
        guard topK >= 0 else { throw .invalidTopK(topK) }
        guard topP > 0, topP <= 1 else { throw .invalidTopP(topP) }
        decoder = IncrementalDecoder(model: model)
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    /// The uniform number in [0, 1) that draws sentence `sentence`'s token at step `step`.
    package static func uniform(seed: UInt64, sentence: Int, step: Int) -> Float {
        let words = Philox(seed: seed).block(
            UInt32(truncatingIfNeeded: step), UInt32(truncatingIfNeeded: sentence),
            UInt32(truncatingIfNeeded: sentence >> 32), 0x5341_4D50)
        return Philox.unit(words.0)
    }

    /// Samples a translation of each source (token ids without BOS/EOS), at most `maxLength` tokens
    /// (and at most `model.config.maxLen`), without BOS/EOS.
    public func decode(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [[Int32]] {
        try Parallel.latencyBound { () throws(ModelInputError) in try sampleTranslations(sources, maxLength: maxLength)
        }
    }

    private func sampleTranslations(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [[Int32]] {
        guard !sources.isEmpty else { return [] }
        let b = sources.count, v = decoder.model.config.vocabSize
        let steps = Swift.min(maxLength, decoder.model.config.maxLen)
        guard steps > 0 else { return [[Int32]](repeating: [], count: b) }
        let (padded, sourceLength) = paddedSourceBatch(sources)
        try decoder.start(source: padded, batchSize: b, sourceLength: sourceLength, maxSteps: steps)
        workspace.reset(vocabSize: v)
        var outputs = [[Int32]](repeating: [], count: b)
        var finished = [Bool](repeating: false, count: b)
        var tokens = [Int32](repeating: SpecialTokens.bos, count: b)
        for t in 0..<steps {
            let logits = try decoder.step(tokens)
            for r in 0..<b where !finished[r] {
                let u = SamplingDecoder.uniform(seed: seed, sentence: r, step: t)
                let token = workspace.sample(
                    logits + r * v, count: v, temperature: temperature, topK: topK, topP: topP, uniform: u)
                tokens[r] = token
                if token == SpecialTokens.eos { finished[r] = true } else { outputs[r].append(token) }
            }
            if finished.allSatisfy({ $0 }) { break }
        }
        return outputs
    }
}

/// Per-step buffers of the sampler, sized to the vocabulary once.
final class SamplingWorkspace {
    private var order: [Int32] = []
    private var kept: [Bool] = []

    func reset(vocabSize v: Int) {
        if order.count != v {
            order = (0..<v).map { Int32($0) }
            kept = [Bool](repeating: false, count: v)
        }
    }

    /// Draws one token from softmax(row / temperature) restricted by top-k / top-p, using `u`.
    func sample(_ row: UnsafePointer<Float>, count v: Int, temperature: Float, topK: Int, topP: Float, uniform u: Float)
        -> Int32
    {
        var m = row[0]
        for i in 1..<v where row[i] > m { m = row[i] }
        let invT = 1 / Double(temperature)
        @inline(__always) func weight(_ i: Int) -> Double { exp((Double(row[i]) - Double(m)) * invT) }
        let restrictK = topK > 0 && topK < v, restrictP = topP < 1
        if !restrictK && !restrictP {
            var total = 0.0
            for i in 0..<v { total += weight(i) }
            return draw(u, total: total, count: v, weight: weight)
        }
        // Most likely first; ties go to the lower id so the kept set is a function of the row.
        let before: (Int32, Int32) -> Bool = { a, b in
            let x = row[Int(a)], y = row[Int(b)]
            return x != y ? x > y : a < b
        }
        for i in 0..<v { order[i] = Int32(i) }
        var n = v
        if restrictK {
            partialSelect(first: topK, by: before)
            n = topK
        }
        if restrictP {
            order[0..<n].sort(by: before)
            var total = 0.0
            for i in 0..<n { total += weight(Int(order[i])) }
            let target = Double(topP) * total
            var cumulative = 0.0, keep = 0
            while keep < n {
                cumulative += weight(Int(order[keep]))
                keep += 1
                if cumulative >= target { break }
            }
            n = keep
        }
        for i in 0..<v { kept[i] = false }
        for i in 0..<n { kept[Int(order[i])] = true }
        var total = 0.0
        for i in 0..<v where kept[i] { total += weight(i) }
        return draw(u, total: total, count: v) { i in kept[i] ? weight(i) : 0 }
    }

    /// Inverse-CDF draw in vocabulary order; the last token with positive weight absorbs rounding.
    private func draw(_ u: Float, total: Double, count v: Int, weight: (Int) -> Double) -> Int32 {
        let target = Double(u) * total
        var cumulative = 0.0, last = 0
        for i in 0..<v {
            let w = weight(i)
            guard w > 0 else { continue }
            cumulative += w
            last = i
            if cumulative > target { return Int32(i) }
        }
        return Int32(last)
    }

    /// Quickselect: moves the `k` best entries of `order` (by `before`) to its front, in O(V).
    private func partialSelect(first k: Int, by before: (Int32, Int32) -> Bool) {
        var lo = 0, hi = order.count - 1
        while lo < hi {
            let pivot = order[lo + (hi - lo) / 2]
            var i = lo, j = hi
            while i <= j {
                while before(order[i], pivot) { i += 1 }
                while before(pivot, order[j]) { j -= 1 }
                if i <= j {
                    order.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k - 1 <= j { hi = j } else if k - 1 >= i { lo = i } else { return }
        }
    }
}
