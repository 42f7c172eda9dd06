import ArgumentParser
import Foundation
import Training
import TransformerModel

/// Loss, perplexity and token accuracy of a checkpoint on a data file, plus BLEU and chrF of its
/// translations (translation task) or sequence accuracy (toy tasks), printed as one JSON line.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on a data file (JSON output).")
    @Option(help: "Checkpoint directory (or a run directory).") var checkpoint: String
    @Option(
        help:
            "TSV file: source TAB target (text for translation, space-separated ids for the toy tasks). Default: the config's validation set."
    )
    var data: String?
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1
    @Option(help: "GNMT length penalty alpha for beam search.") var lengthPenalty: Double = 0.6
    @Option(help: "Tokenizer file (default: the one named in the checkpoint's config).") var tokenizer: String?
    @Option(help: "Write the translations here, one per line (translation task).") var output: String?
    @Flag(
        help:
            "Round the weight matrices to Float16 and evaluate that copy (as translate --float16-parameters): shows what the rounding costs in loss and BLEU."
    )
    var float16Parameters = false

    func run() throws {
        try reportingErrors {
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            let loaded = try CheckpointModel(path: checkpoint, float16Parameters: float16Parameters)
            if loaded.config.data.task.isToy { try evaluateToy(loaded) } else { try evaluateTranslation(loaded) }
        }
    }

    private func evaluateToy(_ loaded: CheckpointModel) throws {
        guard beam == 1 else {
            throw TrainingError.unsupported(
                "--beam applies to translation checkpoints; the toy tasks report greedy sequence accuracy")
        }
        let v = loaded.config.model.vocabSize
        let pairs: [(source: [Int32], target: [Int32])]
        if let data {
            pairs = try readLines(data).enumerated().filter { !$0.element.isEmpty }.map { i, line in
                let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TrainingError.invalidBatch("\(data):\(i + 1): expected source TAB target")
                }
                return (
                    try parseIDs(String(parts[0]), lineNumber: i + 1, vocab: v),
                    try parseIDs(String(parts[1]), lineNumber: i + 1, vocab: v)
                )
            }
        } else {
            pairs = try makeTrainingData(loaded.config).validationPairs
        }
        guard !pairs.isEmpty else {
            throw TrainingError.invalidBatch(
                "\(data ?? "the validation set") has no source TAB target pair to evaluate")
        }
        let r = try Validator(pairs: pairs, decode: true).run(loaded.model)
        var o: [String: Any] = [
            "checkpoint": loaded.directory, "pairs": pairs.count, "loss": r.loss,
            "perplexity": r.perplexity, "token_accuracy": r.tokenAccuracy, "float16_parameters": float16Parameters,
        ]
        if let s = r.sequenceAccuracy { o["sequence_accuracy"] = s }
        FileHandle.standardOutput.write(RunLog.jsonLine(o))
    }

    private func evaluateTranslation(_ loaded: CheckpointModel) throws {
        let bpe = try loadTokenizer(for: loaded, override: tokenizer)
        guard let path = data ?? loaded.config.data.valid else { throw ValidationError("pass --data FILE") }
        var corpus = try ParallelCorpus(path: path)
        guard !corpus.pairs.isEmpty else {
            throw TrainingError.invalidBatch("\(path) has no usable source TAB target pair (\(corpus.report))")
        }
        let maxLen = loaded.config.model.maxLen
        // Every pair is translated and scored (long sources are cut to max_len for decoding);
        // the teacher-forced loss covers the pairs that fit the model's positions.
        let ids = corpus.pairs.map { (source: bpe.encode($0.source), target: bpe.encode($0.target)) }
        let fitting = ids.filter { $0.source.count <= maxLen && $0.target.count + 1 <= maxLen }
        if fitting.count < ids.count { corpus.skipped[.tooLong] = ids.count - fitting.count }
        printError("evaluate: \(corpus.report)")
        // No pair fits: the translations are still scored, but there is no loss to report (null,
        // never the 0 of an empty sum).
        if fitting.isEmpty {
            printError("evaluate: no pair fits max_len \(maxLen): loss, perplexity and accuracy are null")
        }
        let r = try Validator(pairs: fitting, decode: false).run(loaded.model)
        let noLoss = fitting.isEmpty
        let translator = TextTranslator(
            model: loaded.model, tokenizer: bpe, beamWidth: beam, lengthPenalty: lengthPenalty)
        let start = Date()
        let hypotheses = try translator.translate(ids: ids.map(\.source)).map { bpe.decode($0) }
        let seconds = Date().timeIntervalSince(start)
        let references = corpus.pairs.map(\.target)
        if let output {
            guard
                FileManager.default.createFile(
                    atPath: output, contents: Data((hypotheses.joined(separator: "\n") + "\n").utf8))
            else {
                throw TrainingError.invalidBatch("cannot write \(output)")
            }
        }
        let bleu = CorpusBLEU.score(hypotheses: hypotheses, references: references)
        let o: [String: Any] = [
            "checkpoint": loaded.directory, "data": path, "pairs": corpus.pairs.count,
            "loss": noLoss ? .nan : r.loss, "perplexity": noLoss ? .nan : r.perplexity,
            "token_accuracy": noLoss ? .nan : r.tokenAccuracy, "bleu": bleu.score,
            "chrf": CorpusChrF.score(hypotheses: hypotheses, references: references),
            "bleu_precisions": bleu.precisions, "brevity_penalty": bleu.brevityPenalty,
            "beam": beam, "length_penalty": lengthPenalty, "decode_seconds": seconds,
            "seconds_per_sentence": seconds / Double(Swift.max(1, hypotheses.count)),
            "float16_parameters": float16Parameters,
        ]
        FileHandle.standardOutput.write(RunLog.jsonLine(o))
    }
}
