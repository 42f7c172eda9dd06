#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The sinusoidal position table of the paper.
package enum PositionalEncoding {
    /// [length, width] row-major: PE(pos, 2i) = sin(pos / 10000^(2i/width)),
    /// PE(pos, 2i+1) = cos(pos / 10000^(2i/width)). Computed in Double, stored as Float.
    package static func sinusoids(length: Int, width d: Int) -> [Float] {
        var t = [Float](repeating: 0, count: length * d)
        for pos in 0..<length {
            for i in stride(from: 0, to: d, by: 2) {
                let angle = Double(pos) / pow(10_000, Double(i) / Double(d))
                t[pos * d + i] = Float(sin(angle))
                if i + 1 < d { t[pos * d + i + 1] = Float(cos(angle)) }
            }
        }
        return t
    }
}

/// Attention masks use one convention everywhere: `true` means "may attend".
package enum AttentionMask {
    @inline(__always) package static func isVisible(_ token: Int32) -> Bool { token != SpecialTokens.pad }

    /// One flag per token: false for PAD (keys that must be hidden).
    package static func keyPaddingMask(_ tokens: [Int32]) -> [Bool] { tokens.map(isVisible) }
}
