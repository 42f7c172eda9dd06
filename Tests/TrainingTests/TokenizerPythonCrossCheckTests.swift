import Foundation
import Training
import XCTest

/// Our tokenizer.json loaded by the Hugging Face `tokenizers` package must give exactly our ids and
/// decode them back. Runs when the Python found via TRANSFORMER_TEST_PYTHON (else `python3`) can
/// import tokenizers; skipped otherwise.
final class TokenizerPythonCrossCheckTests: XCTestCase {
    private static let script = """
        import json, sys
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(sys.argv[1])
        lines = open(sys.argv[2], encoding="utf-8", newline="\\n").read().split("\\n")
        out = []
        for line in lines:
            ids = tok.encode(line, add_special_tokens=False).ids
            out.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False)})
        json.dump(out, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=True)
        """

    /// Sentences with everything that could go wrong: unseen and unknown characters, leading,
    /// trailing and repeated spaces, literal ▁, special tokens inside text, tabs, decomposed umlauts.
    static func sentences() -> [String] {
        var lines =
            TokenizerTestText.german
            + TokenizerTestText.germanEnglish.compactMap {
                $0.split(separator: "\t").first.map(String.init)
            }
        lines += [
            "", " ", "  leading spaces", "trailing  ", "many     spaces inside", "tab\tinside",
            "Gro\u{0308}ße Öl", "unknown: Ωμέγα 日本 😀 \u{00A0}nbsp", "a▁b ▁▁", "<s>Die</s> <pad>x<unk>",
            "<s", "</s", "<<s>>", "ÄÖÜäöüß ẞ", "\"Zitat\" – „Anführung“ «Extras» …", "x\u{000B}y",
            "aaaaaaaaaaaa", "ßßßßß", "e\u{301}e\u{301}é",
        ]
        // Deterministic word salad from the corpus vocabulary with odd spacing.
        let words = TokenizerTestText.germanEnglish.flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
        var state: UInt64 = 12345
        for _ in 0..<200 {
            var line = ""
            for position in 0..<Int(3 + state % 12) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                if position > 0 { line += (state >> 60) == 0 ? "  " : " " }
                line += words[Int((state >> 33) % UInt64(words.count))]
            }
            lines.append(line)
        }
        return lines
    }

    func testHuggingFaceTokenizersGivesTheSameIdsAndText() throws {
        guard (try? ReferencePython.run(["-c", "import tokenizers"])) == 0 else {
            throw XCTSkip("Python package tokenizers is not importable with \(ReferencePython.path)")
        }
        let directory = NSTemporaryDirectory() + "tokenizer-python-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let lines = Self.sentences()
        for vocabSize in [120, 400] {
            let tokenizer = try BPETokenizer.train(lines: TokenizerTestText.germanEnglish, vocabSize: vocabSize)
            let tokenizerPath = directory + "/tokenizer-\(vocabSize).json"
            try tokenizer.write(toFile: tokenizerPath)
            try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: directory + "/lines.txt"))
            try Data(Self.script.utf8).write(to: URL(fileURLWithPath: directory + "/check.py"))
            let status = try ReferencePython.run([
                directory + "/check.py", tokenizerPath, directory + "/lines.txt",
                directory + "/out.json",
            ])
            XCTAssertEqual(status, 0, "python failed")
            let json = try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: directory + "/out.json")))
            let results = try XCTUnwrap(json as? [[String: Any]])
            XCTAssertEqual(results.count, lines.count)
            var unknownSeen = false
            for (line, result) in zip(lines, results) {
                let pythonIDs = try XCTUnwrap(result["ids"] as? [Int]).map { Int32($0) }
                let ours = tokenizer.encode(line)
                XCTAssertEqual(ours, pythonIDs, "vocab \(vocabSize): \(line)")
                unknownSeen = unknownSeen || ours.contains(BPETokenizer.unkID)
                // Python's decode keeps specials here; ours drops PAD/BOS/EOS, so compare without them.
                let withoutSpecials = ours.filter { $0 > BPETokenizer.eosID }
                if withoutSpecials == ours, let text = result["text"] as? String {
                    XCTAssertTrue(tokenizer.decode(ours).unicodeScalars.elementsEqual(text.unicodeScalars), line)
                }
            }
            XCTAssertTrue(unknownSeen, "the sentences exercise unknown characters")
        }
    }
}
