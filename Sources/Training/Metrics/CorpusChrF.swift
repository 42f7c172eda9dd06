/// Corpus chrF equal to sacreBLEU 2.x's default `CHRF()`: character n-grams of order 1...6, no word
/// n-grams, beta 2, whitespace removed before n-grams are taken, mixed case, no epsilon smoothing
/// (orders where the hypothesis or reference side has no n-gram are left out of the average).
///
/// Characters are Unicode scalars (Python code points), not grapheme clusters. Per-order counts of
/// hypothesis n-grams, reference n-grams and matches are summed over the corpus; precision and
/// recall are averaged over the orders; the F-beta score of those averages is the result.
public enum CorpusChrF {
    /// The character n-gram order (sacreBLEU's `CHAR_ORDER`).
    public static let charOrder = 6
    /// Recall weighs beta^2 = 4 times as much as precision (sacreBLEU's `BETA`).
    public static let beta = 2.0

    /// chrF (0...100) of `hypotheses[i]` against `references[i]`. Lines pair up like Python's `zip`:
    /// if the counts differ, the extra lines of the longer list are ignored. Use `validatedScore`
    /// to have a count mismatch reported instead.
    public static func score(hypotheses: [String], references: [String]) -> Double {
        var statistics = ChrFStatistics()
        for (h, r) in zip(hypotheses, references) { statistics.add(hypothesis: h, reference: r) }
        return statistics.score
    }

    /// chrF as `score(hypotheses:references:)`, but a line count mismatch is an error.
    public static func validatedScore(hypotheses: [String], references: [String]) throws(MetricsError) -> Double {
        try checkLineCounts(hypotheses, references)
        return score(hypotheses: hypotheses, references: references)
    }
}

/// Sufficient statistics of corpus chrF, accumulated one sentence pair at a time.
public struct ChrFStatistics: Sendable, Equatable {
    /// Per order n = 1...6: hypothesis n-grams (counted only when the reference has n-grams of
    /// that order, as sacreBLEU does), reference n-grams, clipped matches.
    public private(set) var hypothesisNGrams = [Int](repeating: 0, count: CorpusChrF.charOrder)
    /// Reference character n-grams per order n = 1...6.
    public private(set) var referenceNGrams = [Int](repeating: 0, count: CorpusChrF.charOrder)
    /// Clipped character n-gram matches per order n = 1...6.
    public private(set) var matches = [Int](repeating: 0, count: CorpusChrF.charOrder)

    /// Empty statistics (no sentence added yet).
    public init() {}

    /// Adds one hypothesis and its reference (untokenized text).
    public mutating func add(hypothesis: String, reference: String) {
        let hyp = PythonText.removingSpaces(hypothesis)
        let ref = PythonText.removingSpaces(reference)
        for n in 1...CorpusChrF.charOrder {
            let refTotal = Swift.max(0, ref.count - n + 1)
            referenceNGrams[n - 1] += refTotal
            // sacreBLEU: `hyp_count if ref_ngrams else 0`.
            if refTotal > 0 { hypothesisNGrams[n - 1] += Swift.max(0, hyp.count - n + 1) }
        }
        let (hypCodes, refCodes, distinct) = PackedNGrams.codes(hyp, ref)
        if let bits = PackedNGrams.bits(distinctCodes: distinct, maxOrder: CorpusChrF.charOrder) {
            PackedNGrams.addMatches(
                hypothesis: hypCodes, reference: refCodes, maxOrder: CorpusChrF.charOrder,
                bits: bits, into: &matches)
        } else {
            // More than 1023 distinct characters in one pair: code points in 128-bit keys.
            for n in 1...CorpusChrF.charOrder {
                var h = NGramKey.characters(hyp, order: n)
                var r = NGramKey.characters(ref, order: n)
                matches[n - 1] += NGramKey.matches(&h, &r)
            }
        }
    }

    /// sacreBLEU's `CHRF._compute_f_score` with `eps_smoothing=False`, in 0...100.
    public var score: Double {
        let factor = CorpusChrF.beta * CorpusChrF.beta
        var averagePrecision = 0.0, averageRecall = 0.0
        var effectiveOrder = 0
        for i in 0..<CorpusChrF.charOrder where hypothesisNGrams[i] > 0 && referenceNGrams[i] > 0 {
            averagePrecision += Double(matches[i]) / Double(hypothesisNGrams[i])
            averageRecall += Double(matches[i]) / Double(referenceNGrams[i])
            effectiveOrder += 1
        }
        guard effectiveOrder > 0 else { return 0 }
        averagePrecision /= Double(effectiveOrder)
        averageRecall /= Double(effectiveOrder)
        guard averagePrecision + averageRecall != 0 else { return 0 }
        var f = (1 + factor) * averagePrecision * averageRecall
        f /= factor * averagePrecision + averageRecall
        return 100 * f
    }
}
