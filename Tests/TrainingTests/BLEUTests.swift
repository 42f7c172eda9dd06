import Foundation
import Training
import XCTest

/// Corpus BLEU and the 13a tokenizer on hand-computed cases.
final class BLEUTests: XCTestCase {
    private func assertPrecisions(
        _ actual: [Double], _ expected: [Double], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual, expected) { XCTAssertEqual(a, e, accuracy: 1e-12, file: file, line: line) }
    }

    func testPerfectMatchScores100() {
        let s = CorpusBLEU.score(
            hypotheses: ["The cat sat on the mat.", "Ein Hund bellt."],
            references: ["The cat sat on the mat.", "Ein Hund bellt."])
        XCTAssertEqual(s.score, 100, accuracy: 1e-12)
        assertPrecisions(s.precisions, [100, 100, 100, 100])
        XCTAssertEqual(s.brevityPenalty, 1)
        XCTAssertEqual(s.hypothesisLength, 11)  // 7 + 4 tokens: the final periods are tokens
        XCTAssertEqual(s.referenceLength, 11)
    }

    /// hyp "the cat sat on the mat" / ref "the cat is on the mat": matches 5/6, 3/5, 1/4, 0/3;
    /// the 4-gram precision is smoothed to 100/(2*3); BLEU = (500/6 * 60 * 25 * 100/6)^(1/4).
    func testHandComputedPrecisionsWithExpSmoothing() {
        let s = CorpusBLEU.score(hypotheses: ["the cat sat on the mat"], references: ["the cat is on the mat"])
        assertPrecisions(s.precisions, [500.0 / 6, 60, 25, 100.0 / 6])
        XCTAssertEqual(s.matches, [5, 3, 1, 0])
        XCTAssertEqual(s.totals, [6, 5, 4, 3])
        XCTAssertEqual(s.brevityPenalty, 1)
        XCTAssertEqual(s.score, pow(500.0 / 6 * 60 * 25 * 100.0 / 6, 0.25), accuracy: 1e-9)
        XCTAssertEqual(s.score, 37.99178428257963, accuracy: 1e-9)  // sacrebleu 2.6.0
    }

    /// A short hypothesis: BP = exp(1 - 6/4), every precision 100.
    func testBrevityPenalty() {
        let s = CorpusBLEU.score(hypotheses: ["a b c d"], references: ["a b c d e f"])
        XCTAssertEqual(s.brevityPenalty, exp(-0.5), accuracy: 1e-15)
        XCTAssertEqual(s.score, 100 * exp(-0.5), accuracy: 1e-9)
        XCTAssertEqual(s.hypothesisLength, 4)
        XCTAssertEqual(s.referenceLength, 6)
    }

    /// No trigram in the hypothesis: sacreBLEU stops at that order, leaves precision 0 and the score 0.
    func testMissingHigherOrderGivesZero() {
        let s = CorpusBLEU.score(hypotheses: ["the cat"], references: ["the cat sat on the mat"])
        assertPrecisions(s.precisions, [100, 100, 0, 0])
        XCTAssertEqual(s.brevityPenalty, exp(-2.0), accuracy: 1e-15)
        XCTAssertEqual(s.score, 0)
    }

    /// Statistics are summed over lines before the score: line 1 alone has no trigram, but the corpus does.
    func testCorpusSumsStatisticsNotScores() {
        let s = CorpusBLEU.score(hypotheses: ["the cat", "a b c d"], references: ["the cat", "a b c d"])
        XCTAssertEqual(s.totals, [6, 4, 2, 1])
        XCTAssertEqual(s.score, 100, accuracy: 1e-12)
    }

    func testEmptyHypothesisAndEmptyCorpus() {
        let empty = CorpusBLEU.score(hypotheses: [""], references: ["the cat"])
        XCTAssertEqual(empty.score, 0)
        XCTAssertEqual(empty.brevityPenalty, 0)
        XCTAssertEqual(empty.hypothesisLength, 0)
        XCTAssertEqual(empty.referenceLength, 2)
        assertPrecisions(empty.precisions, [0, 0, 0, 0])
        let both = CorpusBLEU.score(hypotheses: ["", "   "], references: ["", ""])
        XCTAssertEqual(both.score, 0)
        XCTAssertEqual(both.brevityPenalty, 1)
        XCTAssertEqual(CorpusBLEU.score(hypotheses: [], references: []).score, 0)
    }

    /// Python compares code points: a decomposed "ö" (o + U+0308) is another token than "ö",
    /// although Swift's `String ==` calls them equal. Matches 4/5, 2/4, 1/3, 0/2 (smoothed to 25).
    func testUmlautsCompareAsCodePoints() {
        let s = CorpusBLEU.score(hypotheses: ["Die Größe ist gut."], references: ["Die Gro\u{0308}ße ist gut."])
        assertPrecisions(s.precisions, [80, 50, 100.0 / 3, 25])
        XCTAssertEqual(s.score, pow(80 * 50 * 100.0 / 3 * 25, 0.25), accuracy: 1e-9)
        XCTAssertEqual(s.score, 42.72870063962342, accuracy: 1e-9)  // sacrebleu 2.6.0
        XCTAssertEqual(
            CorpusBLEU.score(hypotheses: ["Äpfel über Öl für Größe"], references: ["Äpfel über Öl für Größe"]).score,
            100, accuracy: 1e-12)
    }

    func testLineCountMismatch() {
        XCTAssertThrowsError(try CorpusBLEU.validatedScore(hypotheses: ["a", "b"], references: ["a"])) { error in
            XCTAssertEqual(error as? MetricsError, .lineCountMismatch(hypotheses: 2, references: 1))
        }
        XCTAssertThrowsError(try CorpusChrF.validatedScore(hypotheses: ["a"], references: []))
        // The non-throwing form pairs lines like Python's zip: the extra hypothesis is ignored.
        XCTAssertEqual(
            CorpusBLEU.score(hypotheses: ["a b c d", "x"], references: ["a b c d"]).score, 100, accuracy: 1e-12)
    }

    func testStatisticsAccumulateLikeCorpusScore() {
        var stats = BLEUStatistics()
        stats.add(hypothesis: "the cat sat on the mat", reference: "the cat is on the mat")
        stats.add(hypothesis: "a b c d", reference: "a b c d e f")
        let corpus = CorpusBLEU.score(
            hypotheses: ["the cat sat on the mat", "a b c d"],
            references: ["the cat is on the mat", "a b c d e f"])
        XCTAssertEqual(stats.score, corpus)
        XCTAssertEqual(corpus.matches, [9, 6, 3, 1])
        XCTAssertEqual(corpus.totals, [10, 8, 6, 4])
    }

    /// Expected strings are sacrebleu 2.6.0's `Tokenizer13a()(line)`; each follows from the rules.
    func testTokenizer13a() {
        let cases: [(String, String)] = [
            ("Hello, world!", "Hello , world !"),
            ("It costs $3.50, (approx.) 1,000-2,000 items.", "It costs $ 3.50 , ( approx . ) 1,000 - 2,000 items ."),
            ("Größe: 5 Äpfel & Öl.", "Größe : 5 Äpfel & Öl ."),
            ("&quot;Hi&quot; &amp;lt; x &gt; y", "\" Hi \" < x > y"),
            ("don't stop-it", "don't stop-it"),
            ("e.g. U.S.A. 3.5-fach", "e . g . U . S . A . 3.5 - fach"),
            ("a..,b", "a . . , b"),
            ("x-\ny<skipped>z", "xyz"),
            ("  spaced\tout\u{00A0}here\u{3000}ok  ", "spaced out here ok"),
            ("[x]{y}|z~^_`@/\\", "[ x ] { y } | z ~ ^ _ ` @ / \\"),
            ("", ""),
        ]
        for (line, expected) in cases {
            XCTAssertEqual(
                Array(Tokenizer13a.tokenize(line).unicodeScalars), Array(expected.unicodeScalars),
                "\(line.debugDescription)")
        }
        // U+200B is not whitespace for Python: it stays inside the token.
        XCTAssertEqual(Tokenizer13a.tokenize("a\u{200B}b c").unicodeScalars.count, 5)
    }

    /// 1000 sentence pairs of about 20 words must score (BLEU and chrF) in well under a second.
    func testSpeedOnThousandPairs() {
        var rng = MetricsTestGenerator(seed: 7)
        let pairs = (0..<1000).map { _ in rng.pair() }
        let hyps = pairs.map(\.hypothesis), refs = pairs.map(\.reference)
        let start = Date()
        let bleu = CorpusBLEU.score(hypotheses: hyps, references: refs)
        let middle = Date()
        let chrf = CorpusChrF.score(hypotheses: hyps, references: refs)
        let seconds = Date().timeIntervalSince(start)
        print(
            "BLEU \(bleu.score) in \(middle.timeIntervalSince(start)) s, chrF \(chrf), both in \(seconds) s (1000 pairs)"
        )
        XCTAssertGreaterThan(bleu.score, 5)
        XCTAssertGreaterThan(chrf, 5)
        // Release builds take well under 0.1 s on an idle core; debug builds (these tests) are
        // about 5x slower, and the shared 2-core machine adds its share.
        #if DEBUG
            XCTAssertLessThan(seconds, 3.0)
        #else
            XCTAssertLessThan(seconds, 0.5)
        #endif
    }

    /// More than 65535 distinct tokens in one pair do not fit the packed 64-bit n-grams: the
    /// 128-bit path must give the same counts. Hypothesis = the first 40000 of 66000 tokens.
    func testPairWithVeryManyDistinctTokens() {
        let words = (0..<66000).map { "w\($0)" }
        let s = CorpusBLEU.score(
            hypotheses: [words[0..<40000].joined(separator: " ")], references: [words.joined(separator: " ")])
        XCTAssertEqual(s.matches, [40000, 39999, 39998, 39997])
        XCTAssertEqual(s.totals, [40000, 39999, 39998, 39997])
        XCTAssertEqual(s.brevityPenalty, exp(1 - 66000.0 / 40000), accuracy: 1e-15)
        XCTAssertEqual(s.score, 100 * exp(1 - 66000.0 / 40000), accuracy: 1e-9)
    }
}
