import Foundation

/// A corpus BLEU score with the figures sacreBLEU prints beside it.
public struct BLEUScore: Sendable, Equatable {
    /// BLEU in 0...100.
    public var score: Double
    /// Modified n-gram precisions for n = 1...4, in percent (0...100), as sacreBLEU reports them
    /// (smoothed by the `exp` rule where no n-gram matched; 0 after an order with no n-grams at all).
    public var precisions: [Double]
    /// exp(1 - r/c) when the hypotheses are shorter than the references, else 1 (0 if c = 0 < r).
    public var brevityPenalty: Double
    /// Total number of 13a tokens in the hypotheses (sacreBLEU's `sys_len`).
    public var hypothesisLength: Int
    /// Total number of 13a tokens in the references (sacreBLEU's `ref_len`).
    public var referenceLength: Int
    /// Clipped n-gram matches for n = 1...4 (sacreBLEU's `counts`).
    public var matches: [Int]
    /// Hypothesis n-grams for n = 1...4 (sacreBLEU's `totals`).
    public var totals: [Int]

    /// A score with its figures (`CorpusBLEU.score` computes them).
    public init(
        score: Double, precisions: [Double], brevityPenalty: Double, hypothesisLength: Int,
        referenceLength: Int, matches: [Int] = [], totals: [Int] = []
    ) {
        self.score = score
        self.precisions = precisions
        self.brevityPenalty = brevityPenalty
        self.hypothesisLength = hypothesisLength
        self.referenceLength = referenceLength
        self.matches = matches
        self.totals = totals
    }
}

/// Corpus BLEU equal to sacreBLEU 2.x's default `BLEU()` (13a tokenization, mixed case,
/// `exp` smoothing, 4-grams, no effective order) with one reference per hypothesis.
///
/// Sentence statistics (clipped matches, n-gram totals, lengths) are summed over the corpus
/// before the score is formed, so BLEU of a corpus is not the mean of sentence BLEUs.
public enum CorpusBLEU {
    /// The n-gram order (sacreBLEU's `MAX_NGRAM_ORDER`).
    public static let maxOrder = 4

    /// BLEU of `hypotheses[i]` against `references[i]`. Lines pair up like Python's `zip` (as in
    /// the sacrebleu Python API): if the counts differ, the extra lines of the longer list are
    /// ignored. Use `validatedScore` to have a count mismatch reported instead.
    public static func score(hypotheses: [String], references: [String]) -> BLEUScore {
        var statistics = BLEUStatistics()
        for (h, r) in zip(hypotheses, references) { statistics.add(hypothesis: h, reference: r) }
        return statistics.score
    }

    /// BLEU as `score(hypotheses:references:)`, but a line count mismatch is an error.
    public static func validatedScore(hypotheses: [String], references: [String]) throws(MetricsError) -> BLEUScore {
        try checkLineCounts(hypotheses, references)
        return score(hypotheses: hypotheses, references: references)
    }

    /// sacreBLEU's `BLEU.compute_bleu` with `smooth_method='exp'`, `effective_order=False`.
    static func compute(matches: [Int], totals: [Int], hypothesisLength: Int, referenceLength: Int) -> BLEUScore {
        var bp = 1.0
        if hypothesisLength < referenceLength {
            bp = hypothesisLength > 0 ? exp(1 - Double(referenceLength) / Double(hypothesisLength)) : 0
        }
        var precisions = [Double](repeating: 0, count: maxOrder)
        let result = { (score: Double) in
            BLEUScore(
                score: score, precisions: precisions, brevityPenalty: bp, hypothesisLength: hypothesisLength,
                referenceLength: referenceLength, matches: matches, totals: totals)
        }
        // No match of any order: 0 without smoothing (sacreBLEU issue #141).
        guard matches.contains(where: { $0 != 0 }) else { return result(0) }
        var smooth = 1.0
        for n in 0..<maxOrder {
            if totals[n] == 0 { break }
            if matches[n] == 0 {
                // NIST's smoothing: 1/2^k for the k-th order without a match.
                smooth *= 2
                precisions[n] = 100.0 / (smooth * Double(totals[n]))
            } else {
                precisions[n] = 100.0 * Double(matches[n]) / Double(totals[n])
            }
        }
        // sacreBLEU's `my_log` floors log(0) at -9999999999 (it then underflows exp to 0).
        let logSum = precisions.reduce(0.0) { $0 + ($1 == 0 ? -9_999_999_999 : log($1)) }
        return result(bp * exp(logSum / Double(maxOrder)))
    }
}

/// Sufficient statistics of corpus BLEU, accumulated one sentence pair at a time (so a caller
/// can score a stream, e.g. validation batches, without keeping every line).
public struct BLEUStatistics: Sendable, Equatable {
    /// Clipped n-gram matches for n = 1...4, summed over the sentences added.
    public private(set) var matches = [Int](repeating: 0, count: CorpusBLEU.maxOrder)
    /// Hypothesis n-grams for n = 1...4, summed over the sentences added.
    public private(set) var totals = [Int](repeating: 0, count: CorpusBLEU.maxOrder)
    /// 13a tokens of the hypotheses added.
    public private(set) var hypothesisLength = 0
    /// 13a tokens of the references added.
    public private(set) var referenceLength = 0

    /// Empty statistics (no sentence added yet).
    public init() {}

    /// Adds one hypothesis and its reference (both untokenized text).
    public mutating func add(hypothesis: String, reference: String) {
        // sacreBLEU's `_preprocess_segment`: rstrip, then 13a.
        let hyp = Tokenizer13a.tokens(PythonText.rstrip(Array(hypothesis.unicodeScalars)))
        let ref = Tokenizer13a.tokens(PythonText.rstrip(Array(reference.unicodeScalars)))
        // Token codes local to the pair, so that n-grams compare as integers. Tokens are keyed by
        // their code points (Python's equality), not by Swift's canonical String equality.
        let (hypCodes, refCodes, distinct) = PackedNGrams.codes(hyp, ref)
        for n in 1...CorpusBLEU.maxOrder { totals[n - 1] += Swift.max(0, hypCodes.count - n + 1) }
        if let bits = PackedNGrams.bits(distinctCodes: distinct, maxOrder: CorpusBLEU.maxOrder) {
            PackedNGrams.addMatches(
                hypothesis: hypCodes, reference: refCodes, maxOrder: CorpusBLEU.maxOrder,
                bits: bits, into: &matches)
        } else {
            // More than 65535 distinct tokens in one pair: 32-bit ids in 128-bit keys.
            for n in 1...CorpusBLEU.maxOrder {
                var h = NGramKey.words(hypCodes.map { UInt32(truncatingIfNeeded: $0) }, order: n)
                var r = NGramKey.words(refCodes.map { UInt32(truncatingIfNeeded: $0) }, order: n)
                matches[n - 1] += NGramKey.matches(&h, &r)
            }
        }
        hypothesisLength += hypCodes.count
        referenceLength += refCodes.count
    }

    /// The corpus score of everything added so far.
    public var score: BLEUScore {
        CorpusBLEU.compute(
            matches: matches, totals: totals, hypothesisLength: hypothesisLength,
            referenceLength: referenceLength)
    }
}
