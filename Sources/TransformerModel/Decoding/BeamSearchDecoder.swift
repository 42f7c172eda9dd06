import TensorCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One finished beam-search hypothesis.
public struct BeamHypothesis: Equatable, Sendable {
    /// Output tokens without BOS and without EOS.
    public var tokens: [Int32]
    /// Whether the hypothesis ended by predicting EOS (false: it reached the length limit).
    public var endsWithEOS: Bool
    /// Sum of the log-probabilities of every predicted token (EOS included when predicted).
    public var logProbability: Double
    /// `logProbability / lp(predictions)` with the GNMT penalty lp(n) = ((5 + n) / 6)^alpha.
    public var score: Double

    /// A finished hypothesis with its scores.
    public init(tokens: [Int32], endsWithEOS: Bool, logProbability: Double, score: Double) {
        self.tokens = tokens
        self.endsWithEOS = endsWithEOS
        self.logProbability = logProbability
        self.score = score
    }

    /// Number of predicted tokens the score covers (tokens, plus EOS when predicted).
    public var predictions: Int { tokens.count + (endsWithEOS ? 1 : 0) }
}

/// Batched beam search with the KV cache: B sentences x K beams run as B*K decoder rows.
///
/// Selection (as in fairseq, so that width 1 is exactly greedy decoding): at every step each live
/// beam proposes its K+1 most likely next tokens; of the (at most) K*(K+1) candidates, ordered by
/// total log-probability, an EOS candidate ranked among the first K finishes its hypothesis (kept
/// apart from the beam, scored with the length penalty), and the K best non-EOS candidates form
/// the next live beam. At the last step (the length limit) the first K candidates all finish.
///
/// Stopping rule, per sentence: stop when K hypotheses have finished, or when no live hypothesis
/// can beat the best finished one (for `nBest` with N: the N-th best). The bound for a live
/// hypothesis with total log-probability s <= 0 is s / lp(maxSteps): its log-probability can only
/// decrease and lp only grows with length, so this is the best normalised score it could still
/// reach (with alpha = 0 it is its current score, the exact bound). The result is the finished
/// hypothesis with the highest score (ties: the one that finished first); `nBest` returns the N
/// highest in that order, so its first hypothesis is always `search`'s.
public struct BeamSearchDecoder {
    package let decoder: IncrementalDecoder
    /// K, the live hypotheses kept per sentence (1: exactly greedy decoding).
    public let beamWidth: Int
    /// The GNMT length-penalty exponent alpha (0: no penalty).
    public let lengthPenaltyAlpha: Double
    /// Benchmarks only: EOS candidates are passed over (they neither finish a hypothesis nor take
    /// a beam), so no sentence stops early and every search runs `maxLength` steps.
    package var runsToMaxLength = false
    private let workspace = BeamWorkspace()

    /// - Throws: `DecodingError` for a beam width below 1 or a negative / non-finite alpha.
    public init(model: Transformer, beamWidth: Int, lengthPenalty alpha: Double = 0.6) throws(DecodingError) {
        guard beamWidth >= 1 else { throw .invalidBeamWidth(beamWidth) }
        guard alpha.isFinite, alpha >= 0 else { throw .invalidLengthPenalty(alpha) }
        decoder = IncrementalDecoder(model: model)
        self.beamWidth = beamWidth
        lengthPenaltyAlpha = alpha
    }

    /// GNMT length penalty lp(n) = ((5 + n) / 6)^alpha (Wu et al., 2016).
    public static func lengthPenalty(_ predictions: Int, alpha: Double) -> Double {
        pow((5 + Double(predictions)) / 6, alpha)
    }

    /// Translates each source (token ids without BOS/EOS) into its best hypothesis, at most
    /// `maxLength` tokens (and at most `model.config.maxLen`), without BOS/EOS.
    public func decode(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [[Int32]] {
        try search(sources, maxLength: maxLength).map(\.tokens)
    }

    /// Like `decode`, returning the best hypothesis of each source with its scores.
    public func search(_ sources: [[Int32]], maxLength: Int) throws(ModelInputError) -> [BeamHypothesis] {
        let empty = BeamHypothesis(tokens: [], endsWithEOS: false, logProbability: -.infinity, score: -.infinity)
        return try run(sources, maxLength: maxLength, keep: 1).map { $0.first ?? empty }
    }

    /// The `count` best finished hypotheses of each source (1 <= count <= beam width), best first
    /// by `score`; fewer only when the search finished fewer distinct hypotheses (a vocabulary
    /// smaller than the beam). The first of each list is what `search` returns.
    public func nBest(_ sources: [[Int32]], maxLength: Int, count: Int) throws -> [[BeamHypothesis]] {
        guard (1...beamWidth).contains(count) else { throw DecodingError.invalidNBest(count, beamWidth: beamWidth) }
        return try run(sources, maxLength: maxLength, keep: count)
    }

    /// The search itself; keeps searching a sentence until its `keep`-th best finished hypothesis
    /// cannot be beaten, and returns each sentence's finished hypotheses, best first, at most `keep`.
    private func run(_ sources: [[Int32]], maxLength: Int, keep: Int) throws(ModelInputError) -> [[BeamHypothesis]] {
        try Parallel.latencyBound { () throws(ModelInputError) in
            try beamSearch(sources, maxLength: maxLength, keep: keep)
        }
    }

    private func beamSearch(_ sources: [[Int32]], maxLength: Int, keep: Int) throws(ModelInputError)
        -> [[BeamHypothesis]]
    {
        guard !sources.isEmpty else { return [] }
        let b = sources.count, k = beamWidth, v = decoder.model.config.vocabSize, rows = b * k
        let steps = Swift.min(maxLength, decoder.model.config.maxLen)
        guard steps > 0 else {
            return Array(
                repeating: [BeamHypothesis(tokens: [], endsWithEOS: false, logProbability: 0, score: 0)], count: b)
        }
        let (padded, sourceLength) = paddedSourceBatch(sources)
        try decoder.start(source: padded, batchSize: b, sourceLength: sourceLength, maxSteps: steps, repeats: k)
        let w = workspace
        w.reset(rows: rows, steps: steps, perRow: Swift.min(k + 1, v))
        for s in 0..<b { w.beamScore[s * k] = 0 }  // the K copies of BOS are one hypothesis
        var finished = [[BeamHypothesis]](repeating: [], count: b)
        // The keep-th best finished score of each sentence (-inf until `keep` have finished).
        var bestFinished = [Double](repeating: -.infinity, count: b)
        var done = [Bool](repeating: false, count: b)
        let boundPenalty = BeamSearchDecoder.lengthPenalty(steps, alpha: lengthPenaltyAlpha)
        for t in 0..<steps {
            let logits = try decoder.step(w.feed)
            let last = t == steps - 1
            for s in 0..<b where !done[s] {
                w.collectCandidates(sentence: s, beams: k, logits: logits, vocabSize: v)
                if last {
                    for c in w.candidates.prefix(k) { finished[s].append(finalize(c, step: t)) }
                    done[s] = true
                    continue
                }
                var live = 0
                for (i, c) in w.candidates.enumerated() {
                    if c.token == SpecialTokens.eos {
                        if i < k && !runsToMaxLength {
                            finished[s].append(finalize(c, step: t))
                            if finished[s].count >= keep {
                                bestFinished[s] =
                                    keep == 1
                                    ? Swift.max(bestFinished[s], finished[s][finished[s].count - 1].score)
                                    : finished[s].map(\.score).sorted(by: >)[keep - 1]
                            }
                        }
                    } else if live < k {
                        w.nextRow[s * k + live] = (c.row, c.token, c.score)
                        live += 1
                    }
                    if live == k && i >= k - 1 { break }
                }
                for j in live..<k { w.nextRow[s * k + j] = (s * k + j, SpecialTokens.pad, -.infinity) }
                var bestLive = -Double.infinity
                for j in 0..<k {
                    let r = s * k + j, (parent, token, score) = w.nextRow[r]
                    w.parents[r] = Int32(parent)
                    w.feed[r] = token
                    w.beamScore[r] = score
                    w.tokenAt[t * rows + r] = token
                    w.parentAt[t * rows + r] = Int32(parent)
                    bestLive = Swift.max(bestLive, score)
                }
                if finished[s].count >= k || bestLive == -.infinity || bestFinished[s] >= bestLive / boundPenalty {
                    done[s] = true
                }
            }
            if last || done.allSatisfy({ $0 }) { break }
            // Rows of finished sentences keep their own history (parent = self): nothing to copy.
            for s in 0..<b where done[s] { for j in 0..<k { w.parents[s * k + j] = Int32(s * k + j) } }
            try w.parents.withUnsafeBufferPointer { (p) throws(ModelInputError) in try decoder.reorder(parents: p) }
        }
        // Best first; equal scores keep the order in which they finished.
        return finished.map { list in
            list.indices.sorted { list[$0].score != list[$1].score ? list[$0].score > list[$1].score : $0 < $1 }
                .prefix(keep).map { list[$0] }
        }
    }

    /// Turns candidate `c` chosen at step `t` into a finished hypothesis, following back-pointers.
    private func finalize(_ c: BeamCandidate, step t: Int) -> BeamHypothesis {
        let w = workspace, rows = w.rowCount
        let eos = c.token == SpecialTokens.eos
        var tokens = [Int32](repeating: 0, count: t + (eos ? 0 : 1))
        if !eos { tokens[t] = c.token }
        var r = c.row
        for u in stride(from: t - 1, through: 0, by: -1) {
            tokens[u] = w.tokenAt[u * rows + r]
            r = Int(w.parentAt[u * rows + r])
        }
        let penalty = BeamSearchDecoder.lengthPenalty(t + 1, alpha: lengthPenaltyAlpha)
        return BeamHypothesis(tokens: tokens, endsWithEOS: eos, logProbability: c.score, score: c.score / penalty)
    }
}

/// A next-token candidate: the live row it extends, its rank among that row's tokens, the token
/// and the total log-probability of the extended hypothesis.
struct BeamCandidate {
    var score: Double
    var row: Int
    var rank: Int
    var token: Int32

    /// Higher score first; ties go to the lower row, then to the row's better-ranked token.
    @inline(__always)
    func precedes(_ o: BeamCandidate) -> Bool {
        if score != o.score { return score > o.score }
        if row != o.row { return row < o.row }
        return rank < o.rank
    }
}

/// Buffers of one beam search, reused across steps (and across calls of the same decoder).
final class BeamWorkspace {
    var rowCount = 0, perRow = 0
    var beamScore: [Double] = [], feed: [Int32] = [], parents: [Int32] = []
    /// Back-pointers: token chosen at step u for live row r, and the row it extended at step u-1.
    var tokenAt: [Int32] = [], parentAt: [Int32] = []
    var nextRow: [(Int, Int32, Double)] = []
    var candidates: [BeamCandidate] = []
    private var topValue: [Float] = [], topToken: [Int32] = []

    func reset(rows: Int, steps: Int, perRow: Int) {
        rowCount = rows
        self.perRow = perRow
        func fill<T>(_ a: inout [T], _ value: T, _ n: Int) {
            a.removeAll(keepingCapacity: true)
            a.append(contentsOf: repeatElement(value, count: n))
        }
        fill(&beamScore, -.infinity, rows)
        fill(&feed, SpecialTokens.bos, rows)
        fill(&parents, 0, rows)
        fill(&tokenAt, SpecialTokens.pad, rows * steps)
        fill(&parentAt, 0, rows * steps)
        fill(&nextRow, (0, SpecialTokens.pad, -.infinity), rows)
        fill(&topValue, 0, perRow)
        fill(&topToken, 0, perRow)
        candidates.removeAll(keepingCapacity: true)
        candidates.reserveCapacity(rows * perRow)
    }

    /// Fills `candidates` with the best `perRow` tokens of each live beam of sentence `s`, sorted
    /// by `BeamCandidate.precedes`. A global top-K (or top-K non-EOS) candidate is always among its
    /// row's best K+1 tokens, so this partial selection replaces a sort of K*V scores.
    func collectCandidates(sentence s: Int, beams k: Int, logits: UnsafeMutablePointer<Float>, vocabSize v: Int) {
        candidates.removeAll(keepingCapacity: true)
        for j in 0..<k {
            let r = s * k + j, base = beamScore[r]
            guard base > -.infinity else { continue }
            let row = logits + r * v
            let n = selectTop(row, count: v)
            let logNorm = LogSoftmax.logNormalizer(row, count: v, maximum: topValue[0])
            for i in 0..<n {
                insert(
                    BeamCandidate(score: base + (Double(topValue[i]) - logNorm), row: r, rank: i, token: topToken[i]))
            }
        }
    }

    /// The `perRow` largest entries of a row (ties: lower token first) into topValue/topToken.
    private func selectTop(_ row: UnsafePointer<Float>, count v: Int) -> Int {
        let cap = perRow
        return topValue.withUnsafeMutableBufferPointer { value in
            topToken.withUnsafeMutableBufferPointer { token in
                var n = 0, threshold = -Float.infinity
                for i in 0..<v {
                    let x = row[i]
                    if n == cap && !(x > threshold) { continue }
                    var p = n < cap ? n : cap - 1
                    if n < cap { n += 1 }
                    while p > 0 && value[p - 1] < x {
                        value[p] = value[p - 1]
                        token[p] = token[p - 1]
                        p -= 1
                    }
                    value[p] = x
                    token[p] = Int32(i)
                    if n == cap { threshold = value[cap - 1] }
                }
                return n
            }
        }
    }

    /// Insertion into the sorted candidate list (it holds at most K*(K+1) entries).
    private func insert(_ c: BeamCandidate) {
        candidates.append(c)
        var p = candidates.count - 1
        while p > 0 && c.precedes(candidates[p - 1]) {
            candidates[p] = candidates[p - 1]
            p -= 1
        }
        candidates[p] = c
    }
}
