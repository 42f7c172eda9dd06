import ArgumentParser
import Foundation
import Training

/// `transformer bleu --hyp FILE --ref FILE`: corpus BLEU and chrF as one JSON line, equal to
/// `sacrebleu REF -i HYP -m bleu chrf` with its defaults (13a, exp smoothing; chrF 6/0/2).
struct BleuCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bleu",
        abstract:
            "Corpus BLEU and chrF of a hypothesis file against a reference file (sacreBLEU defaults, JSON output).",
        discussion: """
            Both files are UTF-8 text with one sentence a line; line i of --hyp is scored against \
            line i of --ref, so the files must have the same number of lines (empty lines count). \
            Prints {"bleu", "chrf", "precisions" (percent, n = 1...4), "bp", "sys_len", "ref_len", "lines"}.
            """)
    @Option(help: "Hypotheses (system output), one sentence a line.") var hyp: String
    @Option(help: "References, one sentence a line.") var ref: String

    func run() throws {
        try reportingErrors {
            let hypotheses = try readTextLines(hyp, role: "--hyp")
            let references = try readTextLines(ref, role: "--ref")
            guard hypotheses.count == references.count else {
                throw BleuCommandError.lineCountMismatch(
                    hyp: hyp, hypLines: hypotheses.count,
                    ref: ref, refLines: references.count)
            }
            let bleu = CorpusBLEU.score(hypotheses: hypotheses, references: references)
            let chrf = CorpusChrF.score(hypotheses: hypotheses, references: references)
            let o: [String: Any] = [
                "bleu": bleu.score, "chrf": chrf, "precisions": bleu.precisions,
                "bp": bleu.brevityPenalty, "sys_len": bleu.hypothesisLength,
                "ref_len": bleu.referenceLength, "lines": hypotheses.count,
            ]
            FileHandle.standardOutput.write(RunLog.jsonLine(o))
        }
    }
}

/// Errors of `transformer bleu`, worded for the person who passed the files.
enum BleuCommandError: Error, CustomStringConvertible {
    case unreadable(role: String, path: String, reason: String)
    case lineCountMismatch(hyp: String, hypLines: Int, ref: String, refLines: Int)

    var description: String {
        switch self {
        case let .unreadable(role, path, reason):
            return "\(role) \(path): \(reason)"
        case let .lineCountMismatch(hyp, h, ref, r):
            return "line counts differ: --hyp \(hyp) has \(h) lines, --ref \(ref) has \(r); "
                + "each hypothesis needs exactly one reference on the same line"
        }
    }
}

/// The lines of a UTF-8 text file, split on "\n" only (like sacreBLEU's `open(newline="\n")`);
/// empty lines are kept, a final newline does not start another line, a trailing "\r" is dropped
/// (BLEU and chrF ignore it anyway).
func readTextLines(_ path: String, role: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw BleuCommandError.unreadable(role: role, path: path, reason: "no such file")
    }
    guard !isDirectory.boolValue else {
        throw BleuCommandError.unreadable(role: role, path: path, reason: "is a directory, expected a text file")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw BleuCommandError.unreadable(role: role, path: path, reason: "cannot be read (permissions?)")
    }
    // Decoded as is: a byte order mark stays a character of the first line, as in sacreBLEU
    // (Foundation's `String(data:encoding:)` would drop it).
    guard let text = String(validating: data, as: UTF8.self) else {
        throw BleuCommandError.unreadable(role: role, path: path, reason: "is not valid UTF-8")
    }
    var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
        line.last == "\r" ? String(String.UnicodeScalarView(line.dropLast())) : String(String.UnicodeScalarView(line))
    }
    if lines.last == "" { lines.removeLast() }
    return lines
}
