import Foundation
import TensorCore
import Training
import TransformerModel
import XCTest

final class TranslationDataTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "translation-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func testLengthBucketsSortByWidthAndRespectTheBudget() {
        // Widths max(source, target + 1): 4, 2, 6, 2, 3.
        let lengths = [
            (source: 4, target: 1), (source: 1, target: 1), (source: 2, target: 5), (source: 2, target: 0),
            (source: 3, target: 2),
        ]
        let batches = LengthBuckets.batches(lengths: lengths, tokenBudget: 8)
        // Sorted: 3 (w2, t0), 1 (w2, t1), 4 (w3), 0 (w4), 2 (w6).
        // [3, 1] (2*2=4), +4 -> 3*3=9 > 8: new batch; [4, 0] -> 2*4=8; +2 -> 3*6 > 8: new batch.
        XCTAssertEqual(batches, [[3, 1], [4, 0], [2]])
    }

    func testAPairWiderThanTheBudgetGetsItsOwnBatch() {
        let batches = LengthBuckets.batches(
            lengths: [(source: 50, target: 3), (source: 1, target: 1)], tokenBudget: 10)
        XCTAssertEqual(batches, [[1], [0]])
    }

    func testPermutationIsAPermutationAndDependsOnTheStream() {
        var a = RandomStream(seed: 1, stream: 7), b = RandomStream(seed: 1, stream: 7),
            c = RandomStream(seed: 1, stream: 8)
        let p = LengthBuckets.permutation(count: 100, stream: &a)
        XCTAssertEqual(p.sorted(), Array(0..<100))
        XCTAssertEqual(p, LengthBuckets.permutation(count: 100, stream: &b))
        XCTAssertNotEqual(p, LengthBuckets.permutation(count: 100, stream: &c))
    }

    func testCorpusSkipsAndCountsBadLines() throws {
        let path = directory + "/bad.tsv"
        var bytes = Array("hello\thallo\n\nno tab here\na\tb\tc\n  \t  x\n".utf8)
        bytes += [0xFF, 0xFE, 0x09, 0x41, 0x0A]  // invalid UTF-8
        bytes += Array("good\tgut\r\n".utf8)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let corpus = try ParallelCorpus(path: path)
        XCTAssertEqual(corpus.pairs.map(\.source), ["hello", "good"])
        XCTAssertEqual(corpus.pairs.map(\.target), ["hallo", "gut"])
        XCTAssertEqual(corpus.skipped[.noTab], 2)
        XCTAssertEqual(corpus.skipped[.emptySide], 1)
        XCTAssertEqual(corpus.skipped[.invalidUTF8], 1)
        XCTAssertNil(corpus.skipped[.empty])  // a truly empty line is not counted as a line at all
        XCTAssertEqual(corpus.lines, 6)
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try ParallelCorpus(path: directory + "/missing.tsv")) { error in
            XCTAssertTrue("\(error)".contains("missing.tsv"), "\(error)")
        }
    }

    /// A small corpus and tokenizer on disk, and a config pointing at them.
    private func makeConfig(pairs: Int, maxLen: Int = 32, batchTokens: Int = 64) throws -> RunConfig {
        let words = ["the", "house", "is", "small", "big", "green", "a", "tree", "grows", "slowly"]
        let german = ["das", "Haus", "ist", "klein", "groß", "grün", "ein", "Baum", "wächst", "langsam"]
        var train = "", valid = ""
        for i in 0..<pairs {
            let n = 1 + i % 7
            let idx = (0..<n).map { (i * 7 + $0 * 3) % words.count }
            train +=
                idx.map { words[$0] }.joined(separator: " ") + "\t" + idx.map { german[$0] }.joined(separator: " ")
                + "\n"
        }
        train += "this line has no tab\n"
        train += String(repeating: "house ", count: 40) + "\t" + "Haus\n"  // too long for max_len 32
        for i in 0..<10 {
            valid += words[i] + " " + words[(i + 1) % 10] + "\t" + german[i] + " " + german[(i + 1) % 10] + "\n"
        }
        try train.write(toFile: directory + "/train.tsv", atomically: true, encoding: .utf8)
        try valid.write(toFile: directory + "/valid.tsv", atomically: true, encoding: .utf8)
        let tokenizer = try BPETokenizer.train(lines: (words + german).map { $0 + " " + $0 }, vocabSize: 60)
        try tokenizer.write(toFile: directory + "/tokenizer.json")
        return try RunConfig(
            name: "t",
            model: ModelConfig(
                vocabSize: 64, dModel: 16, heads: 2, dFF: 32, encoderLayers: 1,
                decoderLayers: 1, maxLen: maxLen),
            training: TrainingConfig(batchTokens: batchTokens, maxSteps: 10),
            data: .translation(
                train: directory + "/train.tsv", valid: directory + "/valid.tsv",
                tokenizer: directory + "/tokenizer.json"))
    }

    func testEveryPairAppearsOnceAnEpochInAShuffledOrder() throws {
        let data = try TranslationData(config: try makeConfig(pairs: 200))
        XCTAssertEqual(data.trainPairs.count, 200)
        XCTAssertEqual(data.trainCorpus.skipped[.noTab], 1)
        XCTAssertEqual(data.trainCorpus.skipped[.tooLong], 1)
        XCTAssertTrue(data.loadReport?.contains("1 not exactly one TAB") ?? false, data.loadReport ?? "")
        let n = data.batchesPerEpoch
        XCTAssertGreaterThan(n, 5)
        for epoch in 0..<2 {
            var seen: [[Int32]] = []
            for i in 0..<n {
                let b = data.microBatch(index: epoch * n + i)
                XCTAssertLessThanOrEqual(b.batchSize * Swift.max(b.sourceLength, b.targetLength), 64)
                for r in 0..<b.batchSize {
                    seen.append(
                        Array(b.source[(r * b.sourceLength)..<((r + 1) * b.sourceLength)]).filter {
                            $0 != SpecialTokens.pad
                        })
                }
            }
            XCTAssertEqual(seen.count, 200)
            XCTAssertEqual(
                seen.map { $0.map(String.init).joined(separator: " ") }.sorted(),
                data.trainPairs.map { $0.source.map(String.init).joined(separator: " ") }.sorted())
        }
        XCTAssertNotEqual(data.epochOrder(0), data.epochOrder(1))
        // A pure function of the index: a second instance gives the same batch.
        let again = try TranslationData(config: try makeConfig(pairs: 200))
        XCTAssertEqual(again.microBatch(index: n + 3), data.microBatch(index: n + 3))
    }

    func testTokenizedTextRoundTripsAndTargetsGetEOS() throws {
        let data = try TranslationData(config: try makeConfig(pairs: 20))
        let pair = data.validationPairs[0]
        XCTAssertEqual(data.tokenizer.decode(pair.source), data.validationText[0].source)
        XCTAssertEqual(data.tokenizer.decode(pair.target), data.validationText[0].target)
        let b = data.microBatch(index: 0)
        XCTAssertEqual(
            b.targetTokens,
            (0..<b.batchSize).reduce(0) { total, r in
                total
                    + b.targetOutput[(r * b.targetLength)..<((r + 1) * b.targetLength)].filter {
                        $0 != SpecialTokens.pad
                    }.count
            })
    }

    func testVocabularyLargerThanTheModelIsRefused() throws {
        var config = try makeConfig(pairs: 20)
        config = try RunConfig(
            name: "t",
            model: ModelConfig(vocabSize: 40, dModel: 16, heads: 2, dFF: 32, encoderLayers: 1, decoderLayers: 1),
            training: config.training, data: config.data)
        XCTAssertThrowsError(try TranslationData(config: config)) {
            XCTAssertTrue("\($0)".contains("vocab_size"), "\($0)")
        }
    }
}
