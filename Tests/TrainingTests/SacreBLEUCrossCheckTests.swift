import Foundation
import Training
import XCTest

/// Deterministic English/German sentence pairs with translation-like noise (dropped, swapped and
/// replaced words, punctuation, case, numbers, entities, odd whitespace, decomposed umlauts, empty
/// lines), for cross-checking the metrics against sacrebleu and for the speed test.
struct MetricsTestGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick(_ words: [String]) -> String { words[below(words.count)] }

    static let english = [
        "the", "The", "file", "menu", "window", "click", "select", "cell", "table", "chart",
        "document", "text", "is", "are", "you", "can", "to", "of", "and", "in", "on", "for",
        "with", "a", "an", "this", "that", "open", "save", "insert", "format", "page", "style",
        "don't", "it's", "e.g.", "U.S.", "i.e.", "(optional)", "\"Options\"", "[Tools]", "--",
        "1,000", "3.5", "10-20", "50%", "$5", "A&amp;B", "&lt;tag&gt;", "x/y", "o'clock", "👍🏽", "日本語",
    ]
    static let german = [
        "die", "Die", "der", "das", "Datei", "Menü", "Fenster", "klicken", "Sie", "wählen",
        "Zelle", "Tabelle", "Diagramm", "Dokument", "Größe", "Schriftgröße", "über", "für", "mit",
        "ein", "eine", "öffnen", "speichern", "einfügen", "Seite", "Vorlage", "Änderungen",
        "Übersicht", "Straße", "ß", "z.B.", "d.h.", "„Optionen“", "«Extras»", "–", "…",
        "1.000", "3,5", "10-20", "50 %", "5 €", "Gro\u{0308}ße", "Öl", "äöü", "ÄÖÜ", "café",
    ]
    static let punctuation = [".", ",", "!", "?", ":", ";", " .", "...", ")", "\""]
    static let spaces = [" ", " ", " ", " ", " ", "  ", "\t", "\u{00A0}", "\u{3000}", "\u{200B}"]

    /// A reference and a noisy hypothesis of the same language.
    mutating func pair() -> (hypothesis: String, reference: String) {
        let words = chance(50) ? Self.english : Self.german
        let count = 1 + below(chance(10) ? 4 : 30)
        var ref = (0..<count).map { _ in pick(words) }
        if chance(15) { ref[0] = ref[0].capitalized }
        var hyp: [String] = []
        for w in ref {
            if chance(10) { continue }
            if chance(12) {
                hyp.append(pick(words))
                continue
            }
            if chance(4) {
                hyp.append(w.uppercased())
                continue
            }
            hyp.append(w)
            if chance(5) { hyp.append(pick(words)) }
        }
        if hyp.count > 2, chance(30) { hyp.swapAt(below(hyp.count), below(hyp.count)) }
        let reference = join(ref) + (chance(80) ? pick(Self.punctuation) : "")
        var hypothesis = join(hyp) + (chance(70) ? pick(Self.punctuation) : "")
        if chance(3) { hypothesis = "" }
        if chance(3) { hypothesis += "  " }
        if chance(3) { hypothesis = "<skipped> " + hypothesis }
        return (hypothesis, chance(2) ? "" : reference)
    }

    private mutating func join(_ words: [String]) -> String {
        var s = ""
        for (i, w) in words.enumerated() {
            if i > 0 { s += pick(Self.spaces) }
            s += w
        }
        return s
    }
}

/// Our BLEU, chrF and 13a tokens against the sacrebleu package on generated corpora. Runs when
/// the Python found via TRANSFORMER_TEST_PYTHON (else `python3`) can import sacrebleu.
final class SacreBLEUCrossCheckTests: XCTestCase {
    private static let script = """
        import json, sys
        import sacrebleu
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
        hyps = open(sys.argv[1], encoding="utf-8", newline="\\n").read().split("\\n")
        refs = open(sys.argv[2], encoding="utf-8", newline="\\n").read().split("\\n")
        chunk = int(sys.argv[3])
        out = {"version": sacrebleu.__version__, "chunks": [], "tokens": [Tokenizer13a()(h) for h in hyps]}
        for i in range(0, len(hyps), chunk):
            h, r = hyps[i:i + chunk], refs[i:i + chunk]
            b = sacrebleu.metrics.BLEU().corpus_score(h, [r])
            c = sacrebleu.metrics.CHRF().corpus_score(h, [r])
            out["chunks"].append({"bleu": b.score, "chrf": c.score, "precisions": b.precisions, "bp": b.bp,
                                  "sys_len": b.sys_len, "ref_len": b.ref_len})
        print(json.dumps(out))
        """

    private struct Reference: Decodable {
        struct Chunk: Decodable {
            var bleu: Double, chrf: Double, precisions: [Double], bp: Double
            var sys_len: Int, ref_len: Int
        }
        var version: String
        var chunks: [Chunk]
        var tokens: [String]
    }

    /// Runs the script; nil (the test skips) when Python or sacrebleu is missing.
    private func sacrebleu(hypotheses: [String], references: [String], chunk: Int) throws -> Reference? {
        let python = ProcessInfo.processInfo.environment["TRANSFORMER_TEST_PYTHON"] ?? "python3"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bleu-xcheck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let hypURL = dir.appendingPathComponent("hyp.txt"), refURL = dir.appendingPathComponent("ref.txt")
        try Data(hypotheses.joined(separator: "\n").utf8).write(to: hypURL)
        try Data(references.joined(separator: "\n").utf8).write(to: refURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", Self.script, hypURL.path, refURL.path, String(chunk)]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    func testMatchesSacreBLEUOnGeneratedPairs() throws {
        var rng = MetricsTestGenerator(seed: 2024)
        let pairs = (0..<400).map { _ in rng.pair() }
        let hyps = pairs.map(\.hypothesis), refs = pairs.map(\.reference)
        // Chunks of 400 (the whole corpus), then 40 and 4 lines: low scores, zero 4-gram matches, BP < 1.
        var largestBLEU = 0.0, largestChrF = 0.0, compared = 0
        for chunk in [400, 40, 4] {
            guard let ref = try sacrebleu(hypotheses: hyps, references: refs, chunk: chunk) else {
                throw XCTSkip("sacrebleu is not importable (set TRANSFORMER_TEST_PYTHON to a Python that has it)")
            }
            if chunk == 400 {
                XCTAssertEqual(ref.tokens.count, hyps.count)
                for (h, expected) in zip(hyps, ref.tokens) {
                    XCTAssertEqual(
                        Array(Tokenizer13a.tokenize(h).unicodeScalars), Array(expected.unicodeScalars),
                        h.debugDescription)
                }
            }
            XCTAssertEqual(ref.chunks.count, (hyps.count + chunk - 1) / chunk)
            for (k, expected) in ref.chunks.enumerated() {
                let range = (k * chunk)..<min(hyps.count, (k + 1) * chunk)
                let h = Array(hyps[range]), r = Array(refs[range])
                let bleu = CorpusBLEU.score(hypotheses: h, references: r)
                let chrf = CorpusChrF.score(hypotheses: h, references: r)
                XCTAssertEqual(bleu.hypothesisLength, expected.sys_len, "chunk \(chunk) #\(k)")
                XCTAssertEqual(bleu.referenceLength, expected.ref_len, "chunk \(chunk) #\(k)")
                XCTAssertEqual(bleu.brevityPenalty, expected.bp, accuracy: 1e-12)
                for (p, e) in zip(bleu.precisions, expected.precisions) { XCTAssertEqual(p, e, accuracy: 1e-9) }
                XCTAssertEqual(bleu.score, expected.bleu, accuracy: 0.01, "chunk \(chunk) #\(k)")
                XCTAssertEqual(chrf, expected.chrf, accuracy: 0.01, "chunk \(chunk) #\(k)")
                largestBLEU = max(largestBLEU, abs(bleu.score - expected.bleu))
                largestChrF = max(largestChrF, abs(chrf - expected.chrf))
                compared += 1
            }
            if chunk == 400 {
                print("sacrebleu \(ref.version): BLEU \(ref.chunks[0].bleu), chrF \(ref.chunks[0].chrf) on 400 pairs")
            }
        }
        print(
            "compared \(compared) corpora with sacrebleu: largest |BLEU diff| \(largestBLEU), largest |chrF diff| \(largestChrF)"
        )
    }
}
