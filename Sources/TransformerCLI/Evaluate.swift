import ArgumentParser
import Foundation
import Training
import TransformerModel

/// Loss, perplexity, token accuracy (and sequence accuracy for the toy tasks) of a checkpoint on a
/// data file, printed as JSON.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on a data file (JSON output).")
    @Option(help: "Checkpoint directory (or a run directory).") var checkpoint: String
    @Option(help: "TSV file: source TAB target (toy tasks: space-separated ids). Default: the config's validation set.")
    var data: String?
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1

    func run() throws {
        try reportingErrors {
            guard beam == 1 else { throw TrainingError.unsupported("--beam > 1 is not available yet; use --beam 1") }
            let loaded = try CheckpointModel(path: checkpoint)
            let v = loaded.config.model.vocabSize
            let pairs: [(source: [Int32], target: [Int32])]
            if let data {
                pairs = try readLines(data).enumerated().map { i, line in
                    let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw TrainingError.invalidBatch("\(data):\(i + 1): expected source TAB target") }
                    return (try parseIDs(String(parts[0]), lineNumber: i + 1, vocab: v), try parseIDs(String(parts[1]), lineNumber: i + 1, vocab: v))
                }
            } else {
                pairs = try makeTrainingData(loaded.config).validationPairs
            }
            let r = try Validator(pairs: pairs, decode: loaded.config.data.task.isToy).run(loaded.model)
            var o: [String: Any] = ["checkpoint": loaded.directory, "pairs": pairs.count, "loss": r.loss,
                                    "perplexity": r.perplexity, "token_accuracy": r.tokenAccuracy]
            if let s = r.sequenceAccuracy { o["sequence_accuracy"] = s }
            FileHandle.standardOutput.write(RunLog.jsonLine(o))
        }
    }
}
