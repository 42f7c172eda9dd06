import TensorCore

/// What rounding to Float16 does to values: the overflow check a worker makes before it sends
/// Float16 gradients, and the rounding itself for a driver that has no wire but must compute
/// exactly what a coordinator with workers computes (the tests' `TrainingRun`).
package enum Float16Rounding {
    /// The smallest magnitude that rounds to infinity in Float16 (round to nearest even: 65504 is
    /// the largest finite value, and the midpoint 65520 rounds up to the next power, 65536 = inf).
    package static let overflowThreshold: Float = 65520

    /// True when every value is finite after rounding to Float16 (|x| < 65520; NaN fails).
    package static func isFiniteAfterRounding(_ values: UnsafePointer<Float>, count: Int) -> Bool {
        var ok = true
        for i in 0..<count where !(abs(values[i]) < overflowThreshold) {
            ok = false
            break
        }
        return ok
    }

    /// Rounds `count` values to Float16 and back in place (what a Float16 bucket delivers), through
    /// `scratch` (no allocation once it is large enough).
    package static func round(_ values: UnsafeMutablePointer<Float>, count: Int, scratch: inout [UInt16]) {
        let block = 1 << 16
        if scratch.count < Swift.min(count, block) { scratch = [UInt16](repeating: 0, count: Swift.min(count, block)) }
        scratch.withUnsafeMutableBufferPointer { s in
            guard let half = s.baseAddress else { return }
            var offset = 0
            while offset < count {
                let n = Swift.min(block, count - offset)
                Half.encode(values + offset, half, count: n)
                Half.decode(half, values + offset, count: n)
                offset += n
            }
        }
    }
}
