import Foundation

/// Lines of a TSV file of sentence pairs (source TAB target), read without trusting the file:
/// lines that are empty, not valid UTF-8, without exactly one TAB, or with an empty side are
/// skipped and counted instead of stopping the run.
public struct ParallelCorpus: Sendable {
    /// Why a line was skipped.
    public enum SkipReason: String, Sendable, CaseIterable {
        case empty = "empty"
        case invalidUTF8 = "invalid UTF-8"
        case noTab = "not exactly one TAB"
        case emptySide = "empty source or target"
        case tooLong = "longer than max_len after tokenization"
    }

    public let path: String
    /// The usable pairs, in file order.
    public let pairs: [(source: String, target: String)]
    /// Lines skipped so far, by reason (`tooLong` is filled in by whoever tokenizes).
    public var skipped: [SkipReason: Int]
    /// Non-empty lines read, including the skipped ones.
    public let lines: Int

    /// Reads `path`; a missing or unreadable file is an error naming it.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.invalidBatch("cannot read \(path) (missing or unreadable); "
                + "for the en-de corpus run Scripts/prepare-data")
        }
        self.path = path
        var pairs: [(source: String, target: String)] = []
        var skipped: [SkipReason: Int] = [:]
        var lines = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                var stop = end
                if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }  // tolerate CRLF files
                let line = UnsafeBufferPointer(rebasing: bytes[start..<stop])
                start = end + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    if !line.isEmpty { skipped[.empty, default: 0] += 1; lines += 1 }
                    continue
                }
                lines += 1
                guard let text = String(validating: line, as: UTF8.self) else { skipped[.invalidUTF8, default: 0] += 1; continue }
                let fields = text.split(separator: "\t", omittingEmptySubsequences: false)
                guard fields.count == 2 else { skipped[.noTab, default: 0] += 1; continue }
                let source = fields[0].trimmingCharacters(in: .whitespaces)
                let target = fields[1].trimmingCharacters(in: .whitespaces)
                guard !source.isEmpty, !target.isEmpty else { skipped[.emptySide, default: 0] += 1; continue }
                pairs.append((source, target))
            }
        }
        self.pairs = pairs
        self.skipped = skipped
        self.lines = lines
    }

    /// "path: N pairs (skipped: 3 empty, 1 invalid UTF-8)".
    public var report: String {
        let parts = SkipReason.allCases.compactMap { r in skipped[r].map { "\($0) \(r.rawValue)" } }
        let total = skipped.values.reduce(0, +)
        return "\(path): \(lines - total) pairs of \(lines) lines" + (parts.isEmpty ? "" : " (skipped: " + parts.joined(separator: ", ") + ")")
    }
}
