import Training
import XCTest

/// Shared text for the tokenizer tests.
enum TokenizerTestText {
    /// Digest of the tokenizer trained on `TokenizerTrainingTests.classicLines` with vocabSize 100.
    static let classicHash = "912ed62d1129e5f4"

    /// A small English/German corpus (TSV: English TAB German) with umlauts, ß, quotes and punctuation.
    static let germanEnglish = [
        "The file could not be opened.\tDie Datei konnte nicht geöffnet werden.",
        "Select the cells you want to format.\tWählen Sie die Zellen aus, die Sie formatieren möchten.",
        "Click OK to save your changes.\tKlicken Sie auf OK, um Ihre Änderungen zu speichern.",
        "The font size is too large.\tDie Schriftgröße ist zu groß.",
        "Street names: Main Street, Long Street.\tStraßennamen: Hauptstraße, Lange Straße.",
        "Open the \"Options\" dialog (Tools menu).\tÖffnen Sie den Dialog „Optionen“ (Menü Extras).",
        "Do you really want to delete 3 files?\tMöchten Sie wirklich 3 Dateien löschen?",
        "Overview of all functions – see below…\tÜbersicht über alle Funktionen – siehe unten…",
        "Oil prices rose by 5 %; that's new!\tDie Ölpreise stiegen um 5 %; das ist neu!",
        "The white lily blooms in the garden.\tDie weiße Lilie blüht im Garten.",
        "Use the window menu to arrange the windows.\tVerwenden Sie das Menü Fenster, um die Fenster anzuordnen.",
        "Insert a chart into the document.\tFügen Sie ein Diagramm in das Dokument ein.",
    ]

    /// The German sides of `germanEnglish`.
    static var german: [String] { germanEnglish.compactMap { $0.split(separator: "\t").last.map(String.init) } }
}

/// Encoding and decoding: round trips, unknown characters, special tokens in text, Metaspace edge cases.
final class TokenizerEncodingTests: XCTestCase {
    func testGermanRoundTripsAtEveryVocabularySize() throws {
        for vocabSize in [100, 200, 400, 10_000] {
            let tokenizer = try BPETokenizer.train(lines: TokenizerTestText.germanEnglish, vocabSize: vocabSize)
            for line in TokenizerTestText.germanEnglish {
                for side in line.split(separator: "\t").map(String.init) {
                    let ids = tokenizer.encode(side)
                    XCTAssertFalse(ids.contains(BPETokenizer.unkID), side)
                    XCTAssertEqual(tokenizer.decode(ids), side, "vocab \(vocabSize)")
                }
            }
            let unseen = "Die große Änderung: Öl über Straße!"
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(unseen)), unseen)
        }
    }

    func testLargeVocabularyMakesWholeWordsSingleTokens() throws {
        let tokenizer = try BPETokenizer.train(lines: TokenizerTestText.germanEnglish, vocabSize: 10_000)
        // Metaspace keeps punctuation on the word: the corpus has "▁Straße." and "▁Schriftgröße".
        let ids = tokenizer.encode("Straße. Schriftgröße")
        XCTAssertEqual(ids.compactMap { tokenizer.token(for: $0) }, ["▁Straße.", "▁Schriftgröße"])
        XCTAssertEqual(tokenizer.encode(lines: ["Straße. Schriftgröße", "Schriftgröße"]), [ids, [ids[1]]])
    }

    /// Characters outside the alphabet become <unk> (3) one by one, while the known characters around
    /// them still merge, as in `tokenizers` with fuse_unk false.
    func testUnknownCharacters() throws {
        let tokenizer = try BPETokenizer.train(lines: TokenizerTrainingTests.classicLines, vocabSize: 100)
        // ▁low(19) Ω Ω ; "▁" alone is 14; "x" unknown.
        XCTAssertEqual(tokenizer.encode("lowΩΩ"), [19, 3, 3])
        XCTAssertEqual(tokenizer.encode("x"), [14, 3])
        XCTAssertEqual(
            tokenizer.encode("xlow"), [14, 3, 17, 13], "lo merges; ▁+lo cannot (<unk> between), lo+w is no merge")
        XCTAssertEqual(tokenizer.decode([19, 3, 3]), "low<unk><unk>")
        XCTAssertEqual(tokenizer.encode("e\u{301}"), [14, 5, 3], "a combining accent is its own (unknown) scalar")
    }

    /// Semantics of `tokenizers`' Metaspace (prepend "always", split) and added-token extraction,
    /// checked against the Python package by hand.
    func testSpacesAndSpecialTokensInText() throws {
        let tokenizer = try BPETokenizer.train(lines: TokenizerTrainingTests.classicLines, vocabSize: 100)
        XCTAssertEqual(tokenizer.encode(""), [])
        XCTAssertEqual(tokenizer.encode(" "), [14])
        XCTAssertEqual(tokenizer.encode("low "), [19, 14])
        XCTAssertEqual(tokenizer.encode(" low"), [19], "a leading space is the prepended ▁")
        XCTAssertEqual(tokenizer.encode("low  low"), [19, 14, 19])
        XCTAssertEqual(tokenizer.encode("low▁low"), [19, 19], "a literal ▁ acts like a space")
        XCTAssertEqual(tokenizer.encode("low<s>low</s>"), [19, 1, 19, 2], "each segment gets its own ▁")
        XCTAssertEqual(tokenizer.encode("<pad><unk>"), [0, 3])
        XCTAssertEqual(tokenizer.decode([1, 19, 14, 19, 2, 0, 0]), "low  low")
        XCTAssertEqual(tokenizer.decode([14, 19]), " low", "only the first token loses its ▁")
        XCTAssertEqual(tokenizer.decode([19, 14]), "low ")
        XCTAssertEqual(tokenizer.decode([-1, 999, 19]), "low", "out-of-range ids are skipped")
    }

    /// Words longer than `BPETokenizer.longWord` characters are merged with a heap instead of the
    /// O(n^2) scan: the same ids, on substrings of the corpus written as one Metaspace word (so the
    /// merges apply, ties included), with unknown characters mixed in, at lengths around the switch.
    func testLongWordsMergeWithTheHeapExactlyAsWithTheScan() throws {
        let tokenizer = try BPETokenizer.train(lines: TokenizerTestText.germanEnglish, vocabSize: 400)
        let text = Array(
            TokenizerTestText.germanEnglish.joined(separator: " ").replacingOccurrences(of: "\t", with: " ")
                .replacingOccurrences(of: " ", with: "\u{2581}").unicodeScalars.map(\.value))
        var state: UInt64 = 12_345
        func random(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var merged = 0
        for trial in 0..<300 {
            let length = [2, 47, 48, 49, 50, 200, 1_000][trial % 7] + random(5)
            var scalars: [UInt32] = []
            while scalars.count < length {
                let from = random(text.count - 1)
                scalars += text[from..<Swift.min(text.count, from + 1 + random(30))]
                if random(10) == 0 { scalars.append(0x4E2D) }  // outside the alphabet: <unk>
            }
            let initial = scalars.prefix(length).map { tokenizer.characterID($0) }
            var scanned = initial, heaped = initial
            tokenizer.mergeByScanning(&scanned, from: 0)
            tokenizer.mergeLongWord(&heaped, from: 0)
            XCTAssertEqual(heaped, scanned, "trial \(trial), \(length) characters")
            merged += initial.count - scanned.count
        }
        XCTAssertGreaterThan(merged, 10_000, "the words must exercise many merges")
        // encode() switches to the heap above the threshold and gives the scan's ids.
        let long = String(repeating: "Straßennamen", count: 400)
        var expected = Array("\u{2581}\(long)".unicodeScalars.map { tokenizer.characterID($0.value) })
        tokenizer.mergeByScanning(&expected, from: 0)
        XCTAssertEqual(tokenizer.encode(long), expected)
    }
}
