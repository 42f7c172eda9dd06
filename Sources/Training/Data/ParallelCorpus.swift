import Foundation

/// Lines of a TSV file of sentence pairs (source TAB target), read without trusting the file:
/// lines that are empty, not valid UTF-8, without exactly one TAB, or with an empty side are
/// skipped and counted instead of stopping the run.
package struct ParallelCorpus: Sendable {
    /// Why a line was skipped.
    package enum SkipReason: String, Sendable, CaseIterable {
        case empty = "empty"
        case invalidUTF8 = "invalid UTF-8"
        case noTab = "not exactly one TAB"
        case emptySide = "empty source or target"
        case tooLong = "longer than max_len after tokenization"
    }

    package let path: String
    /// The usable pairs, in file order.
    package let pairs: [(source: String, target: String)]
    /// Lines skipped so far, by reason (`tooLong` is filled in by whoever tokenizes).
    package var skipped: [SkipReason: Int]
    /// Non-empty lines read, including the skipped ones.
    package let lines: Int

    /// Reads `path`; a missing or unreadable file is an error naming it.
    package init(path: String) throws {
        let text: TextLines
        do { text = try TextLines(contentsOfFile: path) } catch {
            throw TrainingError.invalidBatch(
                "cannot read \(path) (\(error)); for the en-de corpus run Scripts/prepare-data")
        }
        self.init(text: text, path: path)
    }

    /// Splits lines already read (e.g. by the fuzz target `tsv-corpus`); `path` names them in `report`.
    package init(text: TextLines, path: String) {
        self.path = path
        var pairs: [(source: String, target: String)] = []
        var skipped: [SkipReason: Int] = [:]
        if text.invalidLines > 0 { skipped[.invalidUTF8] = text.invalidLines }
        var lines = text.invalidLines
        for line in text.lines where !line.isEmpty {  // a truly empty line is not counted as a line
            lines += 1
            guard !line.allSatisfy({ $0 == " " || $0 == "\t" }) else {
                skipped[.empty, default: 0] += 1
                continue
            }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2 else {
                skipped[.noTab, default: 0] += 1
                continue
            }
            let source = fields[0].trimmingCharacters(in: .whitespaces)
            let target = fields[1].trimmingCharacters(in: .whitespaces)
            guard !source.isEmpty, !target.isEmpty else {
                skipped[.emptySide, default: 0] += 1
                continue
            }
            pairs.append((source, target))
        }
        self.pairs = pairs
        self.skipped = skipped
        self.lines = lines
    }

    /// "path: N pairs (skipped: 3 empty, 1 invalid UTF-8)".
    package var report: String {
        let parts = SkipReason.allCases.compactMap { r in skipped[r].map { "\($0) \(r.rawValue)" } }
        let total = skipped.values.reduce(0, +)
        return "\(path): \(lines - total) pairs of \(lines) lines"
            + (parts.isEmpty ? "" : " (skipped: " + parts.joined(separator: ", ") + ")")
    }
}
