import Training
import XCTest

/// BPE training: merges hand-computed on the classic Sennrich et al. corpus, determinism, errors.
final class TokenizerTrainingTests: XCTestCase {
    /// low x5, lower x2, newest x6, widest x3 (Sennrich et al. 2016), as Metaspace words "▁low", ...
    static let classicLines = [
        "low low low low low", "lower lower newest newest newest",
        "newest newest newest widest widest widest",
    ]

    private func texts(_ tokenizer: BPETokenizer, _ merges: ArraySlice<BPETokenizer.Merge>) -> [String] {
        merges.map { "\(tokenizer.token(for: $0.left) ?? "?") \(tokenizer.token(for: $0.right) ?? "?")" }
    }

    /// Alphabet by code point: d e i l n o r s t w ▁ -> ids 4...14 ("▁" U+2581 sorts last).
    /// Pair counts: es 9, st 9, we 8, ▁l lo ow 7, ... The most frequent pair wins; ties go to the smaller
    /// left id, then the smaller right id. By hand:
    ///  1 "e s" (9; beats "s t" 9 since e < s)        2 "es t" (9)
    ///  3 "l o" (7; ▁l, lo, ow tie, l < o < ▁)          4 "▁ lo" (7)          5 "▁lo w" (7)
    ///  6 "e w" (6; ▁n, ne, ew, w+est tie; e smallest)  7 "n ew" (6)   8 "▁ new" (6)   9 "▁new est" (6)
    /// 10 "d est" (3; ▁w, wi, id, dest tie; d smallest) 11 "i dest"   12 "w idest"    13 "▁ widest"
    /// 14 "e r" (2; ties with ▁low+e, e < ▁low)        15 "▁low er" (2). Then no pair is left.
    func testClassicCorpusMergesByHand() throws {
        let tokenizer = try BPETokenizer.train(lines: Self.classicLines, vocabSize: 100)
        XCTAssertEqual(
            texts(tokenizer, tokenizer.merges[...]),
            [
                "e s", "es t", "l o", "▁ lo", "▁lo w", "e w", "n ew", "▁ new", "▁new est",
                "d est", "i dest", "w idest", "▁ widest", "e r", "▁low er",
            ])
        XCTAssertEqual(tokenizer.vocabSize, 4 + 11 + 15, "stops when no pair is left")
        XCTAssertEqual(
            (0..<15).compactMap { tokenizer.token(for: Int32($0)) },
            ["<pad>", "<s>", "</s>", "<unk>", "d", "e", "i", "l", "n", "o", "r", "s", "t", "w", "▁"])
        XCTAssertEqual(tokenizer.token(for: 29), "▁lower")
        XCTAssertEqual(tokenizer.merges[1], BPETokenizer.Merge(left: 15, right: 12, result: 16))
        // "▁lowest": es, est, lo, ▁lo, ▁low -> ▁low(19) est(16); "▁newest" and "▁widest" are single tokens.
        XCTAssertEqual(tokenizer.encode("lowest newest widest"), [19, 16, 23, 27])
        XCTAssertEqual(tokenizer.decode([19, 16, 23, 27]), "lowest newest widest")
    }

    func testVocabSizeLimitsTheNumberOfMerges() throws {
        let tokenizer = try BPETokenizer.train(lines: Self.classicLines, vocabSize: 19)
        XCTAssertEqual(tokenizer.vocabSize, 19)
        XCTAssertEqual(texts(tokenizer, tokenizer.merges[...]), ["e s", "es t", "l o", "▁ lo"])
        // "▁low" is no longer a token: ▁lo(18) w(13).
        XCTAssertEqual(tokenizer.encode("low"), [18, 13])
    }

    func testTrainingIsDeterministicAndIndependentOfLineOrder() throws {
        let lines = TokenizerTestText.germanEnglish
        let a = try BPETokenizer.train(lines: lines, vocabSize: 300)
        let b = try BPETokenizer.train(lines: lines, vocabSize: 300)
        let c = try BPETokenizer.train(lines: Array(lines.reversed()), vocabSize: 300)
        XCTAssertEqual(a.vocabSize, 300)
        XCTAssertEqual(a.merges, b.merges)
        XCTAssertEqual(a.hash, b.hash)
        XCTAssertEqual(a.hash, c.hash, "word counts do not depend on the order of the lines")
        let d = try BPETokenizer.train(lines: lines, vocabSize: 299)
        XCTAssertNotEqual(a.hash, d.hash)
        XCTAssertEqual(a.hash.count, 16)
    }

    /// The hash is a pure function of vocabulary and merges: pinned so that a change of the digest
    /// (which would make coordinators refuse workers of another build) cannot go unnoticed.
    func testHashIsPinned() throws {
        let tokenizer = try BPETokenizer.train(lines: Self.classicLines, vocabSize: 100)
        XCTAssertEqual(tokenizer.hash, TokenizerTestText.classicHash)
    }

    func testTabSeparatesTheSidesOfAPair() throws {
        let tokenizer = try BPETokenizer.train(lines: ["ab\tab"], vocabSize: 100)
        // Two words "▁ab" (the TAB is not a character of the alphabet): a b ▁ then "a b", "▁ ab".
        XCTAssertEqual(
            (4..<tokenizer.vocabSize).compactMap { tokenizer.token(for: Int32($0)) },
            ["a", "b", "▁", "ab", "▁ab"])
        XCTAssertEqual(tokenizer.encode("ab\tab"), [8, 3, 7], "a TAB inside encoded text is unknown")
    }

    func testErrors() {
        XCTAssertThrowsError(try BPETokenizer.train(lines: Self.classicLines, vocabSize: 14)) { error in
            XCTAssertEqual(error as? TokenizerError, .vocabSizeTooSmall(requested: 14, minimum: 15))
            XCTAssertTrue("\(error)".contains("at least 15"))
        }
        XCTAssertThrowsError(try BPETokenizer.train(lines: ["", "\t"], vocabSize: 100)) { error in
            XCTAssertEqual(error as? TokenizerError, .emptyCorpus)
        }
    }
}
