#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The learning rate as a function of the optimizer step (counted from 1).
///
/// Both schedules peak at the same value, `factor * dModel^-0.5 * warmup^-0.5`, reached at step
/// `warmup`. Rates are computed in Double and rounded to Float once.
package enum LearningRateSchedule: Sendable, Equatable {
    /// The paper's schedule: `factor * dModel^-0.5 * min(step^-0.5, step * warmup^-1.5)`.
    case noam(dModel: Int, warmup: Int, factor: Float)
    /// Linear warmup from 0 to the Noam peak over `warmup` steps, then a half cosine down to 10% of
    /// the peak at `totalSteps`, constant after that.
    case warmupCosine(dModel: Int, warmup: Int, factor: Float, totalSteps: Int)

    /// Fraction of the peak that the cosine phase ends at.
    package static let cosineFloor = 0.1

    /// The rate for optimizer step `step` (1 is the first step; smaller values are treated as 1).
    /// A warmup below 1 is treated as 1.
    package func rate(step: Int) -> Float {
        Float(exactRate(step: step))
    }

    /// The rate in Double, before rounding to Float.
    package func exactRate(step: Int) -> Double {
        let s = Double(Swift.max(step, 1))
        switch self {
        case let .noam(dModel, warmup, factor):
            let w = Double(Swift.max(warmup, 1))
            return Double(factor) * pow(Double(dModel), -0.5) * Swift.min(pow(s, -0.5), s * pow(w, -1.5))
        case let .warmupCosine(_, warmup, _, totalSteps):
            let peak = peakRate
            let w = Swift.max(warmup, 1)
            if step <= w { return peak * s / Double(w) }
            let span = totalSteps - w
            let progress = span > 0 ? Swift.min(1, Double(step - w) / Double(span)) : 1
            let cosine = 0.5 * (1 + cos(Double.pi * progress))
            return peak * (LearningRateSchedule.cosineFloor + (1 - LearningRateSchedule.cosineFloor) * cosine)
        }
    }

    /// The highest rate of the schedule, reached at step `warmup`.
    package var peakRate: Double {
        switch self {
        case let .noam(dModel, warmup, factor), let .warmupCosine(dModel, warmup, factor, _):
            return Double(factor) * pow(Double(dModel), -0.5) * pow(Double(Swift.max(warmup, 1)), -0.5)
        }
    }
}
