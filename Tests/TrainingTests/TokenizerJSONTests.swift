import Foundation
import Training
import XCTest

/// tokenizer.json: write/read round trips, files in the other accepted spellings, clear errors.
final class TokenizerJSONTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "tokenizer-json-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testWriteReadRoundTripKeepsIdsAndHash() throws {
        let tokenizer = try BPETokenizer.train(lines: TokenizerTestText.germanEnglish, vocabSize: 250)
        let path = directory + "/tokenizer.json"
        try tokenizer.write(toFile: path)
        let loaded = try BPETokenizer(contentsOfFile: path)
        XCTAssertEqual(loaded.hash, tokenizer.hash)
        XCTAssertEqual(loaded.vocabSize, 250)
        XCTAssertEqual(loaded.merges, tokenizer.merges)
        for line in TokenizerTestText.german + ["Größe \"quoted\" \\ back\\slash Ω"] {
            XCTAssertEqual(loaded.encode(line), tokenizer.encode(line), line)
        }
        // Writing again over the same path gives the same bytes.
        let first = try Data(contentsOf: URL(fileURLWithPath: path))
        try loaded.write(toFile: path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), first)
        XCTAssertEqual(loaded.jsonText(), tokenizer.jsonText())
    }

    /// Tokens with characters JSON must escape, and tokens that differ only in Unicode composition
    /// (Swift would call "é" and "e\u{301}" equal strings; they are different tokens).
    func testEscapesAndCanonicallyEquivalentTokensSurvive() throws {
        let lines = ["\"q\" \"q\" a\\b a\\b é é e\u{301} e\u{301} e\u{301}"]
        let tokenizer = try BPETokenizer.train(lines: lines, vocabSize: 100)
        let path = directory + "/escapes.json"
        try tokenizer.write(toFile: path)
        let loaded = try BPETokenizer(contentsOfFile: path)
        XCTAssertEqual(loaded.hash, tokenizer.hash)
        XCTAssertEqual(loaded.vocabSize, tokenizer.vocabSize)
        let composed = loaded.encode("é"), decomposed = loaded.encode("e\u{301}")
        XCTAssertEqual(composed.count, 1)
        XCTAssertEqual(decomposed.count, 1)
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertTrue(loaded.decode(decomposed).unicodeScalars.elementsEqual("e\u{301}".unicodeScalars))
        XCTAssertEqual(loaded.encode("\"q\" a\\b"), tokenizer.encode("\"q\" a\\b"))
    }

    /// A hand-written file in the older spellings `tokenizers` also accepts: merges as "a b" strings,
    /// Metaspace with add_prefix_space instead of prepend_scheme, no added_tokens, pretty-printed.
    func testReadsHandWrittenHuggingFaceFile() throws {
        let json = """
            {"version": "1.0", "normalizer": null,
             "pre_tokenizer": {"type": "Metaspace", "replacement": "\\u2581", "add_prefix_space": true},
             "decoder": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true},
             "model": {"type": "BPE", "unk_token": "<unk>",
                       "vocab": {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "▁": 6,
                                 "ab": 7, "▁ab": 8},
                       "merges": ["a b", "▁ ab"]}}
            """
        let path = directory + "/hand.json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        let tokenizer = try BPETokenizer(contentsOfFile: path)
        XCTAssertEqual(tokenizer.vocabSize, 9)
        XCTAssertEqual(tokenizer.encode("ab abab c"), [8, 8, 7, 6, 3])
        XCTAssertEqual(tokenizer.decode([8, 8, 7, 6, 3]), "ab abab <unk>")
    }

    func testErrorsNameTheFileAndTheProblem() throws {
        let missing = directory + "/missing.json"
        XCTAssertThrowsError(try BPETokenizer(contentsOfFile: missing)) { error in
            XCTAssertEqual(error as? TokenizerError, .cannotRead(path: missing, reason: "no such file"))
            XCTAssertEqual("\(error)", "cannot read \(missing): no such file")
        }
        let cases: [(String, String)] = [
            ("{\"model\": ", "is not valid JSON (byte 10): unexpected end of input"),
            ("[1, 2]", "is inconsistent: the top level is not an object"),
            (
                "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                "is not supported: pre_tokenizer of type ByteLevel (only Metaspace)"
            ),
            ("{\"normalizer\": {\"type\": \"NFKC\"}}", "is not supported: normalizer NFKC (only null)"),
            (
                "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"WordPiece\"}}",
                "is not supported: model type WordPiece (only BPE)"
            ),
            (
                "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"unk_token\": \"<unk>\", "
                    + "\"vocab\": {\"<pad>\": 0, \"<s>\": 1, \"</s>\": 2, \"<unk>\": 3, \"a\": 4}, \"merges\": [\"a a\"]}}",
                "is inconsistent: merge 0 produces \"aa\", which is not in the vocab"
            ),
            (
                "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"unk_token\": \"<unk>\", "
                    + "\"vocab\": {\"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"<unk>\": 3}, \"merges\": []}}",
                "is not supported: vocab id 0 must be <pad>"
            ),
        ]
        for (index, (text, message)) in cases.enumerated() {
            let path = directory + "/bad\(index).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try BPETokenizer(contentsOfFile: path)) { error in
                XCTAssertTrue("\(error)".hasPrefix("tokenizer file \(path) "), "\(error)")
                XCTAssertTrue("\(error)".hasSuffix(message), "\(error) should end with \(message)")
            }
        }
        let tokenizer = try BPETokenizer.train(lines: ["a"], vocabSize: 10)
        let unwritable = directory + "/no/such/dir/tokenizer.json"
        XCTAssertThrowsError(try tokenizer.write(toFile: unwritable)) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write tokenizer file \(unwritable)"), "\(error)")
        }
    }

    func testTextLinesSplitOnNewlineBytesOnly() {
        let data = Data("a\r\nb\rc\n\nd\u{2028}e\n".utf8) + Data([0xFF, 0x0A]) + Data("last".utf8)
        let text = TextLines(utf8: data)
        XCTAssertEqual(text.lines, ["a", "b\rc", "", "d\u{2028}e", "last"])
        XCTAssertEqual(text.invalidLines, 1)
    }
}
