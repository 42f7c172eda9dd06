import Foundation

/// The rules of dynamic loss scaling (`training.float16.gradients`).
///
/// - The scale starts at `initialScale` (2^16).
/// - Every overflow (an inf or NaN in the loss or in any worker's gradient, including one that
///   only appears when the gradient is rounded to Float16 for the wire) halves the scale, never
///   below `minimumScale` (1), and the step is skipped by everyone.
/// - After `growthInterval` (2000) consecutive clean steps the scale doubles (never above
///   `maximumScale`, 2^24: beyond that every Float16 gradient would overflow anyway).
/// - Hysteresis (`hysteresis`, 2) acts on growth, not on the halving: after an overflow the scale
///   must see `hysteresis x growthInterval` consecutive clean steps (2 x 2000) before it may double
///   again, so it does not oscillate between a scale that overflows and the one below it.
///   (DeepSpeed's "hysteresis" instead tolerates overflows before halving; here a single overflow
///   always halves, so an injected inf halves the scale at once.)
package struct LossScalePolicy: Sendable, Equatable {
    package var initialScale: Float
    package var growthInterval: Int
    package var hysteresis: Int
    package var minimumScale: Float
    package var maximumScale: Float

    package init(
        initialScale: Float = 65536, growthInterval: Int = 2000, hysteresis: Int = 2,
        minimumScale: Float = 1, maximumScale: Float = 16_777_216
    ) {
        self.initialScale = initialScale
        self.growthInterval = Swift.max(1, growthInterval)
        self.hysteresis = Swift.max(1, hysteresis)
        self.minimumScale = minimumScale
        self.maximumScale = Swift.max(minimumScale, maximumScale)
    }

    /// The policy of the issue: 2^16, halve on overflow, double after 2000 clean steps, hysteresis 2.
    package static let standard = LossScalePolicy()
}

/// Dynamic loss scaling state for Float16 gradients; static scale 1 (and no updates) without them.
///
/// Saved in a checkpoint's `state.json` under `loss_scale` and restored on resume, so a resumed run
/// scales exactly like an uninterrupted one.
package struct LossScaleState: Sendable, Equatable {
    /// False for Float32 gradients: the scale stays 1 and `update` changes nothing.
    package var isDynamic: Bool
    /// What the loss (its gradient) is multiplied by before backward.
    package var scale: Float
    /// Consecutive clean steps since the last overflow or growth interval.
    package var cleanSteps: Int
    /// Growth intervals (of `growthInterval` clean steps) still to complete before the scale may
    /// double: 1 at the start, `hysteresis` after each overflow.
    package var hysteresisLeft: Int

    /// Static scale 1 (Float32 gradients).
    package init() {
        isDynamic = false
        scale = 1
        cleanSteps = 0
        hysteresisLeft = 1
    }

    /// The start of a run: dynamic at `policy.initialScale` when `dynamic`, else static 1.
    package init(dynamic: Bool, policy: LossScalePolicy = .standard) {
        self.init()
        if dynamic {
            isDynamic = true
            scale = policy.initialScale
        }
    }

    /// What an update did to the scale.
    package enum Change: Sendable, Equatable { case unchanged, halved, doubled }

    /// Records one step: `overflow` when its loss or gradient was not finite (the step is skipped).
    @discardableResult
    package mutating func update(overflow: Bool, policy: LossScalePolicy = .standard) -> Change {
        guard isDynamic else { return .unchanged }
        if overflow {
            cleanSteps = 0
            hysteresisLeft = policy.hysteresis
            let halved = Swift.max(policy.minimumScale, scale / 2)
            defer { scale = halved }
            return halved < scale ? .halved : .unchanged
        }
        cleanSteps += 1
        guard cleanSteps >= policy.growthInterval else { return .unchanged }
        cleanSteps = 0
        if hysteresisLeft > 1 {
            hysteresisLeft -= 1
            return .unchanged
        }
        let doubled = Swift.min(policy.maximumScale, scale * 2)
        defer { scale = doubled }
        return doubled > scale ? .doubled : .unchanged
    }

    /// `state.json` form: `{"dynamic", "scale", "clean_steps", "hysteresis_left"}`.
    package var jsonObject: [String: Any] {
        ["dynamic": isDynamic, "scale": Double(scale), "clean_steps": cleanSteps, "hysteresis_left": hysteresisLeft]
    }

    /// Reads the `state.json` form; `source` names the file in error messages.
    package init(jsonObject o: [String: Any], source: String) throws(TrainingError) {
        func number(_ key: String) throws(TrainingError) -> NSNumber {
            guard let n = o[key] as? NSNumber else {
                throw .resume("\(source): loss_scale.\(key) is missing or not a number")
            }
            return n
        }
        self.init()
        isDynamic = (o["dynamic"] as? Bool) ?? false
        scale = try number("scale").floatValue
        cleanSteps = try number("clean_steps").intValue
        hysteresisLeft = try number("hysteresis_left").intValue
        guard scale.isFinite, scale >= 1 else {
            throw .resume("\(source): loss_scale.scale \(scale) is not a finite number >= 1")
        }
        guard cleanSteps >= 0, hysteresisLeft >= 1 else {
            throw .resume("\(source): loss_scale counters must be clean_steps >= 0 and hysteresis_left >= 1")
        }
    }
}
