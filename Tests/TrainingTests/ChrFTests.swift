import Training
import XCTest

/// Corpus chrF (sacreBLEU defaults: char order 6, beta 2, whitespace removed) on hand-computed cases.
final class ChrFTests: XCTestCase {
    func testPerfectMatchScores100() {
        XCTAssertEqual(
            CorpusChrF.score(hypotheses: ["Das ist gut.", "ab"], references: ["Das ist gut.", "ab"]), 100,
            accuracy: 1e-12)
    }

    /// Whitespace is removed before n-grams are taken, so spacing differences cost nothing.
    func testWhitespaceIsIgnored() {
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["a b\tc"], references: ["abc"]), 100, accuracy: 1e-12)
    }

    /// "abc" vs "abd": orders 1..3 give (hyp, ref, match) = (3,3,2), (2,2,1), (1,1,0); orders 4..6
    /// have no n-grams and are left out. P = R = (2/3 + 1/2 + 0)/3 = 7/18, F2 = 7/18.
    func testHandComputedSymmetricCase() {
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["abc"], references: ["abd"]), 100 * 7.0 / 18, accuracy: 1e-9)
    }

    /// "ab" vs "abcd": (2,4,2), (1,3,1); orders 3 and 4 have reference n-grams but no hypothesis
    /// n-grams and are left out. P = 1, R = (1/2 + 1/3)/2 = 5/12, F2 = 5PR/(4P+R) = 25/53.
    /// Recall weighs more than precision: the reverse pair scores higher recall's way.
    func testHandComputedBetaWeighting() {
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["ab"], references: ["abcd"]), 2500.0 / 53, accuracy: 1e-9)
        // Reverse: P = 5/12, R = 1: F2 = 5 * 5/12 / (4 * 5/12 + 1) = 25/32.
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["abcd"], references: ["ab"]), 2500.0 / 32, accuracy: 1e-9)
    }

    /// Characters are code points: "Öl" vs "Ol" is (2,2,1), (1,1,0): P = R = 1/4. With a
    /// decomposed Ö (O + U+0308) the hypothesis has 3 code points: (3,2,2), (2,1,0): P = 1/3,
    /// R = 1/2, F2 = 5/11 (sacrebleu: 45.45454545454545).
    func testUmlautsAreCodePoints() {
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["Öl"], references: ["Ol"]), 25, accuracy: 1e-9)
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["O\u{0308}l"], references: ["Ol"]), 500.0 / 11, accuracy: 1e-9)
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["Größe"], references: ["Größe"]), 100, accuracy: 1e-12)
    }

    /// Statistics are summed over the corpus before P and R are formed (not a mean of sentence scores):
    /// "a"/"a" adds (1,1,1) to order 1 only, so with "abc"/"abd": order 1 (4,4,3), 2 (2,2,1), 3 (1,1,0).
    func testCorpusSumsStatistics() {
        let p = (3.0 / 4 + 1.0 / 2 + 0) / 3
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["a", "abc"], references: ["a", "abd"]), 100 * p, accuracy: 1e-9)
        var stats = ChrFStatistics()
        stats.add(hypothesis: "a", reference: "a")
        stats.add(hypothesis: "abc", reference: "abd")
        XCTAssertEqual(stats.matches, [3, 1, 0, 0, 0, 0])
        XCTAssertEqual(stats.hypothesisNGrams, [4, 2, 1, 0, 0, 0])
        XCTAssertEqual(stats.referenceNGrams, [4, 2, 1, 0, 0, 0])
    }

    func testEmptyLines() {
        XCTAssertEqual(CorpusChrF.score(hypotheses: [""], references: ["the cat"]), 0)
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["the cat"], references: [""]), 0)
        XCTAssertEqual(CorpusChrF.score(hypotheses: [""], references: [""]), 0)
        XCTAssertEqual(CorpusChrF.score(hypotheses: [], references: []), 0)
        // An empty reference contributes nothing, not even the hypothesis' n-grams (sacreBLEU).
        XCTAssertEqual(CorpusChrF.score(hypotheses: ["xyz", "abc"], references: ["", "abc"]), 100, accuracy: 1e-12)
    }

    /// More than 1023 distinct characters in one pair take the 128-bit path. Reference: 1100
    /// distinct CJK characters; hypothesis: the first 550. Order n: (551-n, 1101-n, 551-n).
    func testPairWithVeryManyDistinctCharacters() {
        let chars = (0..<1100).compactMap { Unicode.Scalar(0x4E00 + $0) }
        XCTAssertEqual(chars.count, 1100)
        let ref = String(String.UnicodeScalarView(chars)), hyp = String(String.UnicodeScalarView(chars[0..<550]))
        var recall = 0.0
        for n in 1...6 { recall += Double(551 - n) / Double(1101 - n) }
        recall /= 6
        XCTAssertEqual(
            CorpusChrF.score(hypotheses: [hyp], references: [ref]), 100 * 5 * recall / (4 + recall), accuracy: 1e-9)
        var stats = ChrFStatistics()
        stats.add(hypothesis: hyp, reference: ref)
        XCTAssertEqual(stats.matches, [550, 549, 548, 547, 546, 545])
    }

    func testPunctuationCountsAsCharacters() {
        // "ab." vs "ab": (3,2,2), (2,1,1), (1,0,0) -> order 3 left out. P = (2/3 + 1/2)/2 = 7/12, R = 1.
        let p = 7.0 / 12
        XCTAssertEqual(
            CorpusChrF.score(hypotheses: ["ab."], references: ["ab"]), 100 * 5 * p / (4 * p + 1), accuracy: 1e-9)
    }
}
