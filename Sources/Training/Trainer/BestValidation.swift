import Foundation

/// The best validation of a run so far by `training.best_metric`, and how many validations have
/// reported the metric since without improving it (the patience counter).
///
/// Saved in every checkpoint's `state.json` as `"best"` (absent before the first validation that
/// reports the metric) and `"validations_since_best"`, so a resumed run keeps both. The value is
/// stored twice: as a JSON number for people and as its IEEE bit pattern (`value_bits`, 16 hex
/// digits), so a resumed run compares against exactly the same Double as an uninterrupted one.
public struct BestValidation: Sendable, Equatable {
    /// The metric compared (`training.best_metric`).
    public var metric: BestMetric
    /// The best value (lowest loss, highest BLEU or chrF).
    public var value: Double
    /// The step of that validation; a checkpoint of this step always exists.
    public var step: Int

    /// The best `value` of `metric` so far, reached at `step`.
    public init(metric: BestMetric, value: Double, step: Int) {
        self.metric = metric
        self.value = value
        self.step = step
    }

    /// `step-NNNNNNNN`, the checkpoint directory of `step`.
    public var checkpointName: String { CheckpointStore.directoryName(step: step) }

    /// The value as printed: BLEU and chrF with 2 decimals (as sacreBLEU), the loss with 4.
    public var formattedValue: String { String(format: metric == .loss ? "%.4f" : "%.2f", value) }
}

/// Decides, at each validation, whether it is the new best and whether patience has run out.
struct BestTracker: Sendable, Equatable {
    let metric: BestMetric
    /// `training.patience`; 0 never stops.
    let patience: Int
    private(set) var best: BestValidation?
    /// Validations reporting the metric since `best` (all of them while there is no best yet).
    private(set) var validationsSinceBest = 0

    init(metric: BestMetric, patience: Int) {
        self.metric = metric
        self.patience = patience
    }

    /// The metric's value in one validation's figures: the loss always, BLEU and chrF when that
    /// validation computed them (nil otherwise: it does not count towards patience).
    func value(in validation: ValidationResult, extras: [String: Double]) -> Double? {
        switch metric {
        case .loss: return validation.loss
        case .bleu: return extras["bleu"]
        case .chrf: return extras["chrf"]
        }
    }

    /// Records a validation at `step`; returns true when it is the new best. A non-finite value
    /// (a diverged loss) never improves.
    mutating func observe(_ value: Double, step: Int) -> Bool {
        if value.isFinite, best.map({ metric.improves(value, on: $0.value) }) ?? true {
            best = BestValidation(metric: metric, value: value, step: step)
            validationsSinceBest = 0
            return true
        }
        validationsSinceBest += 1
        return false
    }

    /// Patience has run out: `patience` validations in a row without improvement.
    var isExhausted: Bool { patience > 0 && validationsSinceBest >= patience }

    /// The fields added to `state.json`.
    var stateFields: [String: Any] {
        var fields: [String: Any] = ["validations_since_best": validationsSinceBest]
        if let best {
            let bits = String(best.value.bitPattern, radix: 16)
            fields["best"] =
                [
                    "metric": best.metric.rawValue, "value": best.value, "step": best.step,
                    "checkpoint": best.checkpointName,
                    "value_bits": String(repeating: "0", count: 16 - bits.count) + bits,
                ] as [String: Any]
        }
        return fields
    }

    /// Restores the fields of a checkpoint's `state.json` (`source` names it in errors). A
    /// checkpoint from before best checkpoints has neither field: nothing is restored. Returns a
    /// note when the saved best is dropped because it was measured with another metric.
    mutating func restore(state: [String: Any], source: String) throws -> String? {
        let saved = state["best"]
        let count = state["validations_since_best"]
        guard saved != nil || count != nil else { return nil }
        guard let count = count as? NSNumber, let since = Int(exactly: count.doubleValue), since >= 0 else {
            throw TrainingError.resume("\(source): \"validations_since_best\" is missing or not a non-negative integer")
        }
        guard let saved else {
            validationsSinceBest = since
            return nil
        }
        guard let object = saved as? [String: Any], let name = object["metric"] as? String,
            let savedMetric = BestMetric(rawValue: name), let step = (object["step"] as? NSNumber)?.intValue,
            let bitsText = object["value_bits"] as? String, let bits = UInt64(bitsText, radix: 16)
        else {
            throw TrainingError.resume("\(source): \"best\" is not an object with metric, step and value_bits")
        }
        guard savedMetric == metric else {
            return
                "best_metric changed from \(savedMetric.rawValue) to \(metric.rawValue) since \(source) was written: "
                + "the best so far and the patience counter start afresh"
        }
        best = BestValidation(metric: metric, value: Double(bitPattern: bits), step: step)
        validationsSinceBest = since
        return nil
    }
}
