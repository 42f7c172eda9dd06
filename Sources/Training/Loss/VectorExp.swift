/// `exp` for softmax rows, written as plain arithmetic so a row is processed eight lanes at a time
/// (the C library's `expf` is a scalar call per element and would dominate the loss).
///
/// Cephes' single-precision scheme: `exp(x) = 2^n * exp(r)` with `n = round(x / ln 2)`, `r` the
/// remainder computed with a two-part ln 2 and `exp(r)` a degree-7 polynomial; relative error
/// below 2e-7 on the range softmax uses. Inputs below -87 are clamped (exp(-87) ~ 1.6e-38, the
/// bottom of the normal range), which only matters for probabilities that are already ~0.
/// NaN stays NaN. Inputs above 88 overflow; softmax only passes `x - max <= 0`.
enum VectorExp {
    private static let lowerBound: Float = -87
    private static let log2e: Float = 1.442_695_04
    /// 1.5 * 2^23: adding it rounds a Float to an integer held in the low mantissa bits.
    private static let roundingMagic: Float = 12_582_912
    private static let roundingMagicBits: UInt32 = 0x4B40_0000
    private static let ln2High: Float = 0.693_359_375
    private static let ln2Low: Float = -2.121_944_40e-4
    private static let p0: Float = 1.987_569_150_0e-4
    private static let p1: Float = 1.398_199_950_7e-3
    private static let p2: Float = 8.333_451_907_3e-3
    private static let p3: Float = 4.166_579_589_4e-2
    private static let p4: Float = 1.666_666_545_9e-1
    private static let p5: Float = 5.000_000_120_1e-1

    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let xc = x.replacing(with: lowerBound, where: x .< lowerBound)
        let t = xc * log2e + roundingMagic
        let n = t - roundingMagic
        let r = xc - n * ln2High - n * ln2Low
        var y = SIMD8<Float>(repeating: p0)
        y = y * r + p1
        y = y * r + p2
        y = y * r + p3
        y = y * r + p4
        y = y * r + p5
        y = y * r * r + r + 1
        let exponent = (unsafeBitCast(t, to: SIMD8<UInt32>.self) &- roundingMagicBits &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// The same computation for one value (row tails), so every element of a row is treated alike:
    /// the vector code on a broadcast, so the two can never drift apart.
    @inline(__always)
    static func exp(_ x: Float) -> Float { exp(SIMD8<Float>(repeating: x))[0] }
}
