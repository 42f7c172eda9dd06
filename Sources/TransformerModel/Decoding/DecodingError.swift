/// A decoding setting that cannot be used; the message names the setting and the accepted range.
public enum DecodingError: Error, Equatable, CustomStringConvertible {
    /// A beam width below 1.
    case invalidBeamWidth(Int)
    /// A length-penalty alpha that is negative or not finite.
    case invalidLengthPenalty(Double)
    /// A sampling temperature that is not a finite number > 0.
    case invalidTemperature(Float)
    /// A negative top-k.
    case invalidTopK(Int)
    /// A top-p outside (0, 1].
    case invalidTopP(Float)
    /// An n-best count outside 1...beam width.
    case invalidNBest(Int, beamWidth: Int)

    /// The message printed to the user, naming the invalid setting.
    public var description: String {
        switch self {
        case let .invalidBeamWidth(k): return "beam width \(k) must be at least 1"
        case let .invalidLengthPenalty(a): return "length penalty alpha \(a) must be a finite number >= 0"
        case let .invalidTemperature(t): return "temperature \(t) must be a finite number > 0"
        case let .invalidTopK(k): return "top-k \(k) must be >= 0 (0 = no top-k restriction)"
        case let .invalidTopP(p): return "top-p \(p) must be in (0, 1] (1 = no nucleus restriction)"
        case let .invalidNBest(n, k):
            return
                "n-best \(n) must be between 1 and the beam width \(k) (a beam search keeps at most its width of hypotheses)"
        }
    }
}

/// Pads variable-length sources (token ids without BOS/EOS) with PAD into one [B, S] batch.
func paddedSourceBatch(_ sources: [[Int32]]) -> (tokens: [Int32], sourceLength: Int) {
    let sourceLength = Swift.max(1, sources.map(\.count).max() ?? 1)
    var padded = [Int32](repeating: SpecialTokens.pad, count: sources.count * sourceLength)
    for (i, s) in sources.enumerated() { for (j, t) in s.enumerated() { padded[i * sourceLength + j] = t } }
    return (padded, sourceLength)
}
