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
                let modelMaxLen = loaded.config.model.maxLen
                warnAboutCutSources(sources, maxLen: modelMaxLen)
                let limit = Swift.min(maxLen ?? modelMaxLen, modelMaxLen)
                let text = { (ids: [Int32]) in ids.map(String.init).joined(separator: " ") }
                // In batches of 64 sentences, as the text path decodes: the KV cache of one batch
                // holding every line of a large input could exhaust memory.
                func inBatches<Output>(_ empty: Output, _ decode: ([[Int32]], Int) throws -> [Output]) throws
                    -> [Output]
                {
                    try TextTranslator.inBatches(
                        sources, maxLen: modelMaxLen, batchSize: 64, maxLength: limit, empty: empty, decode)
                }
                if let nbest {
                    let decoder = try BeamSearchDecoder(
                        model: loaded.model, beamWidth: beam, lengthPenalty: lengthPenalty)
                    printNBest(try inBatches([]) { try decoder.nBest($0, maxLength: $1, count: nbest) }, text: text)
                    return
                }
                let outputs = try inBatches([]) { try decodeIDs($0, model: loaded.model, beam: beam, maxLength: $1) }
                for out in outputs { print(text(out)) }
                return
            }
            let bpe = try loadTokenizer(for: loaded, override: tokenizer)
            var translator = TextTranslator(
                model: loaded.model, tokenizer: bpe, beamWidth: beam, lengthPenalty: lengthPenalty)
            translator.maxLength = maxLen
            let sources = lines.map { bpe.encode($0) }
            warnAboutCutSources(sources, maxLen: loaded.config.model.maxLen)
            if let nbest {
                printNBest(try translator.nBest(ids: sources, count: nbest), text: { bpe.decode($0) })
                return
            }
            for ids in try translator.translate(ids: sources) { print(bpe.decode(ids)) }
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

/// The lines of `path`, or of stdin: split on "\n" bytes (a "\r\n" file gives the same lines),
/// one output line per input line, so a line that is not valid UTF-8 is kept with U+FFFD for its
/// bad bytes and counted on stderr.
func readLines(_ path: String?) throws -> [String] {
    let data: Data
    if let path {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let bytes = FileManager.default.contents(atPath: path)
        else {
            throw TrainingError.invalidBatch("cannot read \(path) (missing, a directory, or unreadable)")
        }
        data = bytes
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
    }
    let text = TextLines(utf8: data, keepingInvalid: true)
    if text.invalidLines > 0 {
        printError(
            "\(text.invalidLines) line(s) of \(path ?? "stdin") are not valid UTF-8: their bad bytes were read as U+FFFD"
        )
    }
    return text.lines
}

/// Warns on stderr, with their line numbers, about sources longer than the model's positions:
/// decoding cuts them to `maxLen` tokens.
func warnAboutCutSources(_ sources: [[Int32]], maxLen: Int) {
    let long = sources.indices.filter { sources[$0].count > maxLen }
    guard !long.isEmpty else { return }
    let shown = long.prefix(10).map { String($0 + 1) }.joined(separator: ", ") + (long.count > 10 ? ", ..." : "")
    printError(
        "warning: \(long.count) source line(s) have more than model.max_len \(maxLen) tokens and were cut to "
            + "\(maxLen) (line \(shown))")
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
