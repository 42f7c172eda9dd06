/// Which entries of a `metrics.jsonl` / `valid.jsonl` line become which TensorBoard curves.
///
/// Non-finite numbers (the loss of a window in which every step was skipped) are left out, as
/// `metrics.jsonl` writes them as null: the curve has no point there rather than a NaN that would
/// stretch its axis. A skipped step still shows in `train/loss_scale` and in `skipped_steps`.
package enum TensorBoardScalars {
    package static let train: [(key: String, tag: String)] = [
        ("loss", "train/loss"), ("lr", "train/lr"), ("grad_norm", "train/grad_norm"),
        ("tokens_per_second", "train/tokens_per_second"), ("loss_scale", "train/loss_scale"),
    ]
    package static let valid: [(key: String, tag: String)] = [
        ("loss", "valid/loss"), ("perplexity", "valid/perplexity"), ("bleu", "valid/bleu"), ("chrf", "valid/chrf"),
        ("sequence_accuracy", "valid/sequence_accuracy"), ("token_accuracy", "valid/token_accuracy"),
    ]

    /// The curves of one metrics line: `train/...`, plus `workers/<rank>/seconds` from its
    /// `worker_seconds` object (keyed by rank) when the distributed coordinator wrote one.
    package static func forStep(_ line: [String: Any]) -> [TensorBoardEvent.Scalar] {
        var scalars = pick(train, from: line)
        if let workers = line["worker_seconds"] as? [String: Any] {
            let ranks = workers.keys.sorted { (Int($0) ?? .max, $0) < (Int($1) ?? .max, $1) }
            for rank in ranks {
                if let seconds = number(workers[rank]) {
                    scalars.append(.init(tag: "workers/\(rank)/seconds", value: seconds))
                }
            }
        }
        return scalars
    }

    /// The curves of one validation line.
    package static func forValidation(_ line: [String: Any]) -> [TensorBoardEvent.Scalar] { pick(valid, from: line) }

    private static func pick(_ keys: [(key: String, tag: String)], from line: [String: Any]) -> [TensorBoardEvent
        .Scalar]
    {
        keys.compactMap { entry in number(line[entry.key]).map { .init(tag: entry.tag, value: $0) } }
    }

    /// A finite number as TensorBoard's float, whatever numeric type the line holds it in.
    private static func number(_ value: Any?) -> Float? {
        let double: Double? =
            switch value {
            case let d as Double: d
            case let f as Float: Double(f)
            case let i as Int: Double(i)
            default: nil
            }
        guard let double, double.isFinite, Float(double).isFinite else { return nil }
        return Float(double)
    }
}
