import ArgumentParser
import Foundation
import Training
import TransformerModel

/// Reads one source per line (for the toy tasks: space-separated token ids) and writes one
/// greedy translation per line.
struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Translate sentences with a checkpoint.")
    @Option(help: "Checkpoint directory (or a run directory: its newest valid checkpoint).") var checkpoint: String
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1
    @Option(help: "Maximum output length in tokens.") var maxLen: Int?
    @Option(help: "Input file (default: standard input).") var input: String?

    func run() throws {
        try reportingErrors {
            guard beam == 1 else { throw TrainingError.unsupported("--beam > 1 is not available yet; use --beam 1") }
            let loaded = try CheckpointModel(path: checkpoint)
            let lines = try readLines(input)
            let sources = try lines.enumerated().map { i, line in try parseIDs(line, lineNumber: i + 1, vocab: loaded.config.model.vocabSize) }
            let limit = Swift.min(maxLen ?? loaded.config.model.maxLen, loaded.config.model.maxLen)
            let decoder = GreedyDecoder(model: loaded.model)
            var start = 0
            while start < sources.count {
                let chunk = Array(sources[start..<Swift.min(sources.count, start + 64)])
                for out in try decoder.decode(chunk, maxLength: limit) {
                    print(out.map(String.init).joined(separator: " "))
                }
                start += chunk.count
            }
        }
    }
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
    return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
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
