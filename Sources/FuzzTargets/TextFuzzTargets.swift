import Foundation
import Training

extension FuzzTarget {
    /// Text the loaded tokenizer encodes: ASCII, "▁", combining marks, a scalar above the direct table.
    private static let sampleText = [
        "a b", "the cat sat", "\u{2581}x  y ", "e\u{301}t\u{e9} \u{1F600}", "<s> </s> <unk> <pad>",
    ]

    /// `tokenizer.json` (our own parser and the BPE model checks), then encoding with the result.
    static let tokenizerJSON = FuzzTarget(
        name: "tokenizer-json", summary: "BPETokenizer(jsonBytes:): tokenizer.json",
        isJSON: true
    ) { bytes in
        let tokenizer: BPETokenizer
        do {
            tokenizer = try BPETokenizer(jsonBytes: bytes, path: "fuzz/tokenizer.json")
        } catch {
            _ = "\(error)"
            return .rejected
        }
        for text in sampleText {
            let ids = tokenizer.encode(text)
            fuzzInvariant(
                ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabSize }, "encode gave an id outside the vocab")
            _ = tokenizer.decode(ids)
        }
        let text = tokenizer.jsonText()
        do {
            let again = try BPETokenizer(jsonBytes: Array(text.utf8), path: "fuzz/rewritten.json")
            fuzzInvariant(again.jsonText() == text, "a rewritten tokenizer.json does not read back the same")
        } catch {
            fatalError("fuzz invariant failed: a rewritten tokenizer.json is refused: \(error)")
        }
        return .accepted
    }

    /// Config JSON (`RunConfig.parse`), and its canonical form read back with the same hash.
    static let configJSON = FuzzTarget(name: "config-json", summary: "RunConfig.parse: configs/*.json", isJSON: true) {
        bytes in
        let config: RunConfig
        do {
            config = try RunConfig.parse(data: Data(bytes), source: "fuzz/config.json")
        } catch {
            _ = "\(error)"
            return .rejected
        }
        do {
            let again = try RunConfig.parse(data: config.rawJSON, source: "fuzz/canonical.json")
            fuzzInvariant(again.configHash == config.configHash, "the canonical config has another hash")
            _ = try config.with(seed: 7, maxSteps: 3)
        } catch {
            fatalError("fuzz invariant failed: a validated config is refused when read back: \(error)")
        }
        return .accepted
    }

    /// TSV corpus lines: `TextLines` splitting, then `ParallelCorpus`'s pair checks.
    static let tsvCorpus = FuzzTarget(
        name: "tsv-corpus", summary: "TextLines + ParallelCorpus: TSV sentence pairs",
        isJSON: false
    ) { bytes in
        let text = TextLines(utf8: Data(bytes))
        let newlines = bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        let expectedLines = newlines + (bytes.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
        fuzzInvariant(text.lines.count + text.invalidLines == expectedLines, "TextLines lost or invented lines")
        let corpus = ParallelCorpus(text: text, path: "fuzz.tsv")
        fuzzInvariant(
            corpus.pairs.count + corpus.skipped.values.reduce(0, +) == corpus.lines, "pairs + skipped != lines")
        for pair in corpus.pairs {
            fuzzInvariant(
                !pair.source.isEmpty && !pair.target.isEmpty && !pair.source.contains("\t")
                    && !pair.target.contains("\t"),
                "a pair with an empty side or a TAB")
        }
        _ = corpus.report
        return corpus.pairs.isEmpty ? .rejected : .accepted
    }
}
