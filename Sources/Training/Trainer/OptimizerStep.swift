import TensorCore
import TransformerModel

/// What happened to one optimizer step.
package struct StepOutcome: Sendable, Equatable {
    package var applied: Bool
    /// Global gradient norm after averaging, before clipping (NaN/inf when skipped for that reason).
    package var gradNorm: Double
    package var learningRate: Float
    /// The step was skipped because its loss or gradient was not finite (an overflow, for
    /// dynamic loss scaling); false for an applied step and for a step without tokens.
    package var nonFinite: Bool = false
}

/// The coordinator's half of a step: average the summed gradients over the global token count,
/// check finiteness, clip, apply AdamW with the learning-rate schedule.
///
/// A non-finite loss or gradient skips the step entirely: no optimizer step and no schedule step
/// (the schedule is driven by the number of applied steps), and the skip is counted.
package final class OptimizerStep {
    package let adam: AdamW
    package let schedule: LearningRateSchedule
    package let clipNorm: Float
    package private(set) var skippedSteps = 0

    package init(layout: ParameterLayout, config: RunConfig) {
        let t = config.training
        adam = AdamW(layout: layout, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weightDecay)
        switch t.schedule {
        case .noam:
            schedule = .noam(dModel: config.model.dModel, warmup: t.warmupSteps, factor: t.lrFactor)
        case .warmupCosine:
            schedule = .warmupCosine(
                dModel: config.model.dModel, warmup: t.warmupSteps, factor: t.lrFactor,
                totalSteps: t.maxSteps)
        }
        clipNorm = t.clipNorm
    }

    /// Restores counters from a checkpoint.
    package func restore(optimizerSteps: Int, skippedSteps: Int) {
        adam.step = optimizerSteps
        self.skippedSteps = skippedSteps
    }

    /// `gradients` holds the sum over all tokens times `gradientMultiplier` (what the workers
    /// multiplied by, `TrainingSession.gradientMultiplier`; 1 without loss scaling); it is unscaled and averaged in place, in Float32.
    package func apply(
        parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>, count: Int,
        tokens: Int, gradientMultiplier: Float = 1, lossIsFinite: Bool = true
    ) -> StepOutcome {
        let lr = schedule.rate(step: adam.step + 1)
        guard tokens > 0 else {
            skippedSteps += 1
            return StepOutcome(applied: false, gradNorm: 0, learningRate: lr)
        }
        BLAS.scale(count, alpha: 1 / (Float(tokens) * gradientMultiplier), x: gradients)
        let (norm, _) = GradientClipping.clip(gradients, count: count, maxNorm: clipNorm)
        guard lossIsFinite, norm.isFinite else {
            skippedSteps += 1
            return StepOutcome(applied: false, gradNorm: norm, learningRate: lr, nonFinite: true)
        }
        adam.step(parameters: parameters, gradients: gradients, lr: lr)
        return StepOutcome(applied: true, gradNorm: norm, learningRate: lr)
    }
}
