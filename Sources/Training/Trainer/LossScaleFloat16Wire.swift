import TensorCore

/// What Float16 on the wire does to values, for the single-process driver (which has no wire but
/// must compute exactly what a coordinator with workers computes) and for the workers' checks.
public enum Float16Wire {
    /// The smallest magnitude that rounds to infinity in Float16 (round to nearest even: 65504 is
    /// the largest finite value, and the midpoint 65520 rounds up to the next power, 65536 = inf).
    public static let overflowThreshold: Float = 65520

    /// True when every value is finite after rounding to Float16 (|x| < 65520; NaN fails).
    public static func isFiniteAfterRounding(_ values: UnsafePointer<Float>, count: Int) -> Bool {
        var ok = true
        for i in 0..<count where !(abs(values[i]) < overflowThreshold) { ok = false; break }
        return ok
    }

    /// Rounds `count` values to Float16 and back in place (what a Float16 bucket delivers), through
    /// `scratch` (no allocation once it is large enough).
    public static func round(_ values: UnsafeMutablePointer<Float>, count: Int, scratch: inout [UInt16]) {
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

extension TrainingSession {
    /// What the workers multiply d(sum of token losses)/d(logits) by in a step of `microBatches`
    /// micro-batches, and what the coordinator divides the summed gradient by (with the token count).
    ///
    /// With Float16 gradients: the loss scale divided by the step's token budget (`batch_tokens x
    /// microBatches`, known to everyone before the step). Gradients here are of the token SUM, so
    /// this makes the scale mean what it means for a mean loss (as in PyTorch's GradScaler): at the
    /// initial 2^16 the scaled gradients of the toy configs stay well inside Float16's range, where
    /// the raw sum times 2^16 would overflow for the first several steps. 1 without Float16 gradients.
    public func gradientMultiplier(microBatches: Int) -> Float {
        guard lossScale.isDynamic else { return 1 }
        return lossScale.scale / Float(Swift.max(1, config.training.batchTokens * microBatches))
    }
}
