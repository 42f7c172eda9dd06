import ArgumentParser
import Foundation
import Training
import TransformerModel

/// Reads one source sentence per line and writes one translation per line (greedy or beam
/// search). Translation checkpoints take text and use the run's tokenizer; toy-task checkpoints
/// take space-separated token ids.
///
/// `--nbest K` prints the K best beam-search hypotheses of each sentence instead, best first, one
/// per line as `SENTENCE_INDEX<TAB>SCORE<TAB>TRANSLATION` (index from 0 in input order; SCORE is
/// what the beam search ranks by: the log-probability divided by the GNMT length penalty of
/// `--length-penalty`, so length-normalised unless alpha is 0). Without `--beam`, the beam is K.
struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Translate sentences with a checkpoint.")
    @Option(help: "Checkpoint directory (or a run directory: its newest valid checkpoint).") var checkpoint: String
    @Option(help: "Beam width (1 = greedy; default 1, or K with --nbest K).") var beam: Int?
    @Option(
        help:
            "Print the K best hypotheses per sentence: INDEX<TAB>SCORE<TAB>TRANSLATION, best first (beam search, K <= beam)."
    )
    var nbest: Int?
    @Option(help: "GNMT length penalty alpha for beam search.") var lengthPenalty: Double = 0.6
    @Option(help: "Maximum output length in tokens (default: the model's max_len).") var maxLen: Int?
    @Option(help: "Input file (default: standard input).") var input: String?
    @Option(help: "Tokenizer file (default: the one named in the checkpoint's config).") var tokenizer: String?
    @Flag(
        help:
            "Round the weight matrices to Float16 and decode from that copy: half the memory and faster on one sentence; outputs may differ slightly."
    )
    var float16Parameters = false

    func run() throws {
        try reportingErrors {
            let beam = self.beam ?? nbest ?? 1
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            if let nbest {
                guard nbest >= 1 else { throw ValidationError("--nbest must be at least 1") }
                guard nbest <= beam else {
                    throw ValidationError(
                        "--nbest \(nbest) exceeds --beam \(beam): a beam search keeps at most its width of "
                            + "hypotheses (use --beam \(nbest) or more, or leave --beam out to search with width \(nbest))"
                    )
                }
            }
            if let maxLen, maxLen < 1 { throw ValidationError("--max-len must be at least 1") }
            let loaded = try CheckpointModel(path: checkpoint, float16Parameters: float16Parameters)
            let lines = try readLines(input)
            if loaded.config.data.task.isToy {
                let sources = try lines.enumerated().map { i, line in
                    try parseIDs(line, lineNumber: i + 1, vocab: loaded.config.model.vocabSize)
                }
                let limit = Swift.min(maxLen ?? loaded.config.model.maxLen, loaded.config.model.maxLen)
                let text = { (ids: [Int32]) in ids.map(String.init).joined(separator: " ") }
                if let nbest {
                    let decoder = try BeamSearchDecoder(
                        model: loaded.model, beamWidth: beam, lengthPenalty: lengthPenalty)
                    printNBest(try decoder.nBest(sources, maxLength: limit, count: nbest), text: text)
                    return
                }
                for out in try decodeIDs(sources, model: loaded.model, beam: beam, maxLength: limit) {
                    print(text(out))
                }
                return
            }
            let bpe = try loadTokenizer(for: loaded, override: tokenizer)
            var translator = TextTranslator(
                model: loaded.model, tokenizer: bpe, beamWidth: beam, lengthPenalty: lengthPenalty)
            translator.maxLength = maxLen
            if let nbest {
                printNBest(
                    try translator.nBest(ids: lines.map { bpe.encode($0) }, count: nbest), text: { bpe.decode($0) })
                return
            }
            for line in try translator.translate(lines) { print(line) }
        }
    }

    private func decodeIDs(_ sources: [[Int32]], model: Transformer, beam: Int, maxLength: Int) throws -> [[Int32]] {
        if beam == 1 { return try GreedyDecoder(model: model).decode(sources, maxLength: maxLength) }
        return try BeamSearchDecoder(model: model, beamWidth: beam, lengthPenalty: lengthPenalty).decode(
            sources, maxLength: maxLength)
    }

    /// `SENTENCE_INDEX<TAB>SCORE<TAB>TRANSLATION`, the score in Swift's shortest round-trip form.
    private func printNBest(_ lists: [[BeamHypothesis]], text: ([Int32]) -> String) {
        for (index, list) in lists.enumerated() {
            for h in list { print("\(index)\t\(h.score)\t\(text(h.tokens))") }
        }
    }
}

/// The tokenizer a translation checkpoint was trained with: `override`, else the config's
/// `data.tokenizer`; refused when its hash differs from the one recorded in the checkpoint.
func loadTokenizer(for loaded: CheckpointModel, override: String?) throws -> BPETokenizer {
    guard let path = override ?? loaded.config.data.tokenizer else {
        throw TrainingError.unsupported("the checkpoint's config names no tokenizer; pass --tokenizer FILE")
    }
    let bpe = try BPETokenizer(contentsOfFile: path)
    if let recorded = loaded.tokenizerHash, !recorded.isEmpty, recorded != bpe.hash {
        throw TrainingError.unsupported(
            "tokenizer \(path) (hash \(bpe.hash)) is not the one this checkpoint was trained with "
                + "(hash \(recorded)); pass the right file with --tokenizer")
    }
    return bpe
}

func readLines(_ path: String?) throws -> [String] {
    let text: String
    if let path {
        guard let t = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrainingError.invalidBatch("cannot read \(path) (missing, unreadable or not UTF-8)")
        }
        text = t
    } else {
        text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    return lines
}

/// Parses space-separated token ids, checking the vocabulary.
func parseIDs(_ line: String, lineNumber: Int, vocab: Int) throws -> [Int32] {
    try line.split(separator: " ").map { field in
        guard let id = Int32(field), id >= 0, Int(id) < vocab else {
            throw TrainingError.invalidBatch("line \(lineNumber): '\(field)' is not a token id in [0, \(vocab))")
        }
        return id
    }
}
