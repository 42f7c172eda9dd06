/// Finds the valid key a misspelt one was probably meant to be, for "did you mean ...?" hints.
enum ConfigKeySuggestion {
    /// The closest of `candidates` to `key`, or nil when none is close enough to be a plausible typo.
    /// Spelling variants (`warmupSteps`, `Warmup-Steps`) always match; otherwise the edit distance
    /// may be at most a third of the key's length (at least 1), so short keys need close matches.
    static func closest(to key: String, in candidates: [String]) -> String? {
        let normalisedKey = normalise(key)
        if let variant = candidates.first(where: { normalise($0) == normalisedKey }) { return variant }
        let limit = max(1, key.count / 3)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(key, candidate)
            if distance <= limit, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.candidate
    }

    private static func normalise(_ key: String) -> String {
        String(key.lowercased().filter { $0 != "_" && $0 != "-" })
    }

    /// Edit distance over characters where insertions, deletions, substitutions and swaps of two
    /// adjacent characters cost 1 (optimal string alignment), since `modle` is one typo, not two.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let source = Array(a), target = Array(b)
        if source.isEmpty { return target.count }
        if target.isEmpty { return source.count }
        var beforePrevious = [Int](repeating: 0, count: target.count + 1)
        var previous = Array(0...target.count)
        var current = [Int](repeating: 0, count: target.count + 1)
        for i in 1...source.count {
            current[0] = i
            for j in 1...target.count {
                let substitution = previous[j - 1] + (source[i - 1] == target[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
                if i > 1, j > 1, source[i - 1] == target[j - 2], source[i - 2] == target[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[target.count]
    }
}
