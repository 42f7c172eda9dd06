#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The log-softmax normaliser of a logits row, vectorised: beam search needs it for every row of
/// every step (B*K rows x V), where scalar `expf` cost as much as a fifth of the decoder itself.
package enum LogSoftmax {
    /// log(sum_i exp(row[i])) given `maximum` = max_i row[i]; exp in Float32 on 8 lanes, the lane
    /// sums combined in Double. Relative error of the sum is about 1e-7.
    package static func logNormalizer(_ row: UnsafePointer<Float>, count: Int, maximum: Float) -> Double {
        var lanes = SIMD8<Float>(repeating: 0)
        let m = SIMD8<Float>(repeating: maximum)
        var i = 0
        while i + 8 <= count {
            lanes += exp8(UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self) - m)
            i += 8
        }
        if i < count {
            var tail = SIMD8<Float>(repeating: -.infinity)
            for l in 0..<(count - i) { tail[l] = row[i + l] - maximum }
            lanes += exp8(tail)
        }
        var sum = 0.0
        for l in 0..<8 { sum += Double(lanes[l]) }
        return Double(maximum) + log(sum)
    }

    /// exp(x) for x <= 0, after Cephes expf: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial
    /// for exp(r), and 2^n written into the exponent bits. n is rounded with the 1.5 * 2^23 trick
    /// (its low mantissa bits then hold n) because the generic SIMD `rounded` and integer conversions
    /// are not vectorised. Inputs below -87 are clamped to -87 (exp(-87) = 1.6e-38, not 0).
    @inline(__always)
    static func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let low = SIMD8<Float>(repeating: -87)
        let x = input.replacing(with: low, where: input .< low)
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let y = p * (r * r) + r + 1
        let exponent =
            (unsafeBitCast(t, to: SIMD8<UInt32>.self) &+ SIMD8<UInt32>(repeating: 127 &- 0x4B40_0000))
            &<< SIMD8<UInt32>(repeating: 23)
        return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }
}
