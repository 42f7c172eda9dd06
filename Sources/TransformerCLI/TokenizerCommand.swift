import ArgumentParser
import Foundation
import Training

/// `transformer tokenizer train|encode|decode`: the joint BPE tokenizer (Hugging Face `tokenizers` JSON).
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train or apply the joint BPE tokenizer (saved as a Hugging Face tokenizer.json).",
        subcommands: [TokenizerTrain.self, TokenizerEncode.self, TokenizerDecode.self])
}

/// `transformer tokenizer train --input FILE... --vocab-size N --output tokenizer.json`.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Learn a joint BPE vocabulary from text files (a TAB-separated line contributes both sides).")
    @Option(help: "A UTF-8 text or TSV file, one sentence (pair) a line; repeat for several files.")
    var input: [String] = []
    @Option(help: "Vocabulary size, including the 4 special tokens and the alphabet.") var vocabSize = 8000
    @Option(help: "Where to write tokenizer.json.") var output: String

    func run() throws {
        try reportingErrors {
            guard !input.isEmpty else { throw ValidationError("give at least one --input FILE") }
            let start = Date()
            var lines: [String] = []
            for path in input {
                let text = try TextLines(contentsOfFile: path)
                if text.invalidLines > 0 {
                    printError("\(path): skipped \(text.invalidLines) lines that are not valid UTF-8")
                }
                lines.append(contentsOf: text.lines)
            }
            let tokenizer = try BPETokenizer.train(lines: lines, vocabSize: vocabSize)
            try tokenizer.write(toFile: output)
            let seconds = Date().timeIntervalSince(start)
            printLine(
                "\(lines.count) lines, \(tokenizer.merges.count) merges, vocabulary \(tokenizer.vocabSize), "
                    + String(format: "%.2f s", seconds) + ", hash \(tokenizer.hash) -> \(output)")
            if tokenizer.vocabSize < vocabSize {
                printError("note: the corpus ran out of pairs to merge before reaching --vocab-size \(vocabSize)")
            }
        }
    }
}

/// `transformer tokenizer encode --tokenizer tokenizer.json`: stdin lines -> space-separated ids.
struct TokenizerEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Print the token ids of each stdin line (no BOS/EOS).")
    @Option(help: "A tokenizer.json written by `tokenizer train`.") var tokenizer: String

    func run() throws {
        try reportingErrors {
            let bpe = try BPETokenizer(contentsOfFile: tokenizer)
            writeLines(bpe.encode(lines: standardInputLines()).map { $0.map(String.init).joined(separator: " ") })
        }
    }
}

/// `transformer tokenizer decode --tokenizer tokenizer.json`: stdin lines of ids -> text.
struct TokenizerDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Turn each stdin line of space-separated ids back into text.")
    @Option(help: "A tokenizer.json written by `tokenizer train`.") var tokenizer: String

    func run() throws {
        try reportingErrors {
            let bpe = try BPETokenizer(contentsOfFile: tokenizer)
            writeLines(
                try standardInputLines().enumerated().map { number, line in
                    var ids: [Int32] = []
                    for field in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                        guard let id = Int32(field), id >= 0, Int(id) < bpe.vocabSize else {
                            throw TokenizerCommandError.badID(
                                line: number + 1, text: String(field), vocabSize: bpe.vocabSize)
                        }
                        ids.append(id)
                    }
                    return bpe.decode(ids)
                })
        }
    }
}

/// Input errors of `transformer tokenizer decode`.
enum TokenizerCommandError: Error, CustomStringConvertible {
    case badID(line: Int, text: String, vocabSize: Int)

    var description: String {
        switch self {
        case let .badID(line, text, vocabSize):
            return "stdin line \(line): \"\(text)\" is not a token id in 0..<\(vocabSize)"
        }
    }
}

/// stdin as lines, one output line per input line: a line that is not valid UTF-8 is kept with
/// U+FFFD for its bad bytes, and counted on stderr.
private func standardInputLines() -> [String] {
    let text = TextLines(utf8: FileHandle.standardInput.readDataToEndOfFile(), keepingInvalid: true)
    if text.invalidLines > 0 {
        printError("\(text.invalidLines) stdin line(s) are not valid UTF-8: their bad bytes were read as U+FFFD")
    }
    return text.lines
}

/// Writes each string as a line of stdout, in one write.
private func writeLines(_ lines: [String]) {
    var out = ""
    for line in lines {
        out += line
        out += "\n"
    }
    FileHandle.standardOutput.write(Data(out.utf8))
}
