import CKernels

/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
///
/// A counter-based generator: the output is a pure function of a 64-bit key and a 128-bit
/// counter. Dropout masks use key = seed and counter = (stream, step, micro-batch, block), so a
/// mask depends only on those numbers, never on which worker or thread produced it, and a
/// recomputed forward (activation checkpointing) sees exactly the same mask.
package struct Philox: Sendable {
    package var key: (UInt32, UInt32)

    package init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// Four 32-bit random words for the counter (c0, c1, c2, c3): the C implementation the dropout
    /// kernel also uses (one definition; `PhiloxTests` checks it against Random123's answers).
    @inline(__always)
    package func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        var out: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &out) { raw in
            ckernels_philox4x32_10(c0, c1, c2, c3, key.0, key.1, raw.baseAddress!.assumingMemoryBound(to: UInt32.self))
        }
        return out
    }

    /// Uniform Float in [0, 1) from a 32-bit word (24 mantissa bits).
    @inline(__always)
    package static func unit(_ w: UInt32) -> Float { Float(w >> 8) * (1.0 / 16_777_216.0) }
}

/// A sequential stream over Philox for initialisation and data generation: the n-th value of
/// stream `s` under seed `k` is fixed, so a run's random choices are reproducible from the seed.
package struct RandomStream: Sendable {
    package let philox: Philox
    package let stream: UInt64
    /// Number of 4-word blocks consumed; part of the checkpointed RNG state.
    package private(set) var position: UInt64
    private var pending: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    package init(seed: UInt64, stream: UInt64, position: UInt64 = 0) {
        philox = Philox(seed: seed)
        self.stream = stream
        self.position = position
    }

    package mutating func nextUInt32() -> UInt32 {
        if used == 4 {
            pending = philox.block(
                UInt32(truncatingIfNeeded: position), UInt32(truncatingIfNeeded: position >> 32),
                UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32))
            position &+= 1
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return pending.0
        case 1: return pending.1
        case 2: return pending.2
        default: return pending.3
        }
    }

    /// Uniform in [0, 1).
    package mutating func uniform() -> Float { Philox.unit(nextUInt32()) }

    /// Uniform integer in `range` (rejection-free multiply-shift; bias below 2^-32 * range).
    package mutating func int(in range: Range<Int>) -> Int {
        let n = UInt64(range.count)
        return range.lowerBound + Int((UInt64(nextUInt32()) &* n) >> 32)
    }

    /// Standard normal by Box-Muller.
    package mutating func normal() -> Float {
        var u1 = uniform()
        if u1 < 1e-12 { u1 = 1e-12 }
        let u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * Float.pi * u2)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
