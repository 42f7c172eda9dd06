import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// Validation is data-parallel: the workers compute its units (loss chunks, scored-translation
/// batches) and the coordinator adds them in unit order, so every figure in `valid.jsonl` has the
/// bits of a single-process validation, whatever the worker count and whichever worker is lost.
final class DistributedValidationTests: XCTestCase {
    /// 300 validation pairs: three loss units of 128, 128 and 44 pairs.
    static func copyConfig(accumulation: Int) throws -> RunConfig {
        let json = """
            {"name": "dpvalid", "model": {"vocab_size": 12, "d_model": 16, "heads": 2, "d_ff": 32, "encoder_layers": 1,
                                          "decoder_layers": 1, "dropout": 0.1, "max_len": 12},
             "training": {"batch_tokens": 24, "accumulation_steps": \(accumulation), "max_steps": 4, "warmup_steps": 2,
                          "validate_every": 2, "checkpoint_every": 4, "valid_size": 300, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 5}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    /// A tiny translation task whose 150 validation pairs are all scored (BLEU, chrF): two loss
    /// units and three translation batches of 64, 64 and 22 sources.
    static func translationConfig(in dir: URL, accumulation: Int) throws -> RunConfig {
        let words = ["the", "house", "is", "small", "big", "green", "a", "tree", "grows", "slowly"]
        let german = ["das", "Haus", "ist", "klein", "groß", "grün", "ein", "Baum", "wächst", "langsam"]
        func lines(_ count: Int, _ salt: Int) -> String {
            (0..<count).map { i -> String in
                let idx = (0..<(1 + (i + salt) % 6)).map { (i * 7 + $0 * 3 + salt) % words.count }
                return idx.map { words[$0] }.joined(separator: " ") + "\t"
                    + idx.map { german[$0] }.joined(separator: " ")
            }.joined(separator: "\n") + "\n"
        }
        let path = dir.path
        try lines(200, 0).write(toFile: path + "/train.tsv", atomically: true, encoding: .utf8)
        try lines(150, 3).write(toFile: path + "/valid.tsv", atomically: true, encoding: .utf8)
        let tokenizer = try BPETokenizer.train(lines: (words + german).map { $0 + " " + $0 }, vocabSize: 60)
        try tokenizer.write(toFile: path + "/tokenizer.json")
        var training = TrainingConfig(batchTokens: 64, accumulationSteps: accumulation, maxSteps: 4)
        training.validateEvery = 2
        training.checkpointEvery = 4
        return try RunConfig(
            name: "dpbleu",
            model: ModelConfig(
                vocabSize: 64, dModel: 16, heads: 2, dFF: 32, encoderLayers: 1,
                decoderLayers: 1, maxLen: 24),
            training: training,
            data: .translation(
                train: path + "/train.tsv", valid: path + "/valid.tsv",
                tokenizer: path + "/tokenizer.json", bleuEvery: 1, bleuSample: 150))
    }

    /// Each validation line of a run without the fields that are not a function of the weights.
    static func validations(_ dir: URL) throws -> [String] {
        try String(contentsOf: dir.appendingPathComponent("valid.jsonl"), encoding: .utf8).split(separator: "\n").map {
            line in
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            o["seconds"] = nil
            return String(
                decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    /// The validation lines of `config` validated here, in one process (`TrainingRun`: no workers).
    func singleProcess(_ config: RunConfig, prefix: String) throws -> [String] {
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: prefix)
        Parallel.threads = 2
        var o = RunOptions(runDirectory: dir)
        o.workers = 1
        o.printProgress = InProcessCluster.verbose
        try TrainingRun(config: config, options: o).run()
        return try Self.validations(dir)
    }

    func testValidationOnWorkersHasTheBitsOfAValidationHere() async throws {
        // The same global batch (6 micro-batches a step) from 1 to 3 workers: the same weights.
        let reference = try singleProcess(try Self.copyConfig(accumulation: 6), prefix: "dpv-here")
        XCTAssertEqual(reference.count, 2)
        XCTAssertTrue(reference[0].contains("sequence_accuracy"), reference[0])
        for workers in 1...3 {
            let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "dpv\(workers)")
            let c = try await InProcessCluster.train(
                try Self.copyConfig(accumulation: 6 / workers), in: dir, workers: workers)
            XCTAssertEqual(try Self.validations(dir), reference, "\(workers) worker(s)")
            // Two validations of three units each, all computed by the workers, each worker a share.
            let byRank = await c.validationUnitsByRank
            XCTAssertNil(byRank[-1], "the coordinator computed units itself: \(byRank)")
            XCTAssertEqual(byRank.values.reduce(0, +), 6, "\(byRank)")
            XCTAssertEqual(byRank.count, workers, "every worker takes a share: \(byRank)")
        }
    }

    func testScoredTranslationsOnWorkersGiveTheBLEUOfAValidationHere() async throws {
        let here = try InProcessCluster.temporaryDirectory(for: self, prefix: "dpb-data")
        let reference = try singleProcess(try Self.translationConfig(in: here, accumulation: 2), prefix: "dpb-here")
        XCTAssertEqual(reference.count, 2)
        XCTAssertTrue(reference.allSatisfy { $0.contains("\"bleu\"") && $0.contains("\"chrf\"") }, "\(reference)")
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "dpb2")
        let c = try await InProcessCluster.train(
            try Self.translationConfig(in: here, accumulation: 1), in: dir, workers: 2)
        XCTAssertEqual(try Self.validations(dir), reference)
        let byRank = await c.validationUnitsByRank
        XCTAssertEqual(byRank, [0: 6, 1: 4], "2 validations x (2 loss + 3 translation units), dealt in turn")
    }

    /// A worker that vanishes when its validation order arrives, and one that never answers it
    /// (dropped at the step deadline): their units go to the others, the figures do not change.
    func testLostWorkersUnitsAreComputedByTheOthers() async throws {
        let reference = try singleProcess(try Self.copyConfig(accumulation: 6), prefix: "dpl-here")
        for fault in [WorkerFault.vanish, .stall] {
            let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "dpl")
            let c = try await InProcessCluster.train(
                try Self.copyConfig(accumulation: 2), in: dir, workers: 3, over: .tcp,
                coordinator: { o in
                    o.heartbeatInterval = 0.1
                    o.heartbeatTimeout = 2
                    o.stepTimeout = 2
                },
                worker: { i, o in
                    o.heartbeatInterval = 0.1
                    o.coordinatorTimeout = 1
                    o.giveUpAfter = 30
                    if i == 1 { o.validationFault = (2, fault) }
                    // The stalled worker, dropped, is told at the end that the run is over.
                })
            XCTAssertEqual(try Self.validations(dir), reference, "\(fault)")
            let byRank = await c.validationUnitsByRank
            XCTAssertEqual(byRank.values.reduce(0, +), 6, "\(fault): \(byRank)")
            // Ranks follow the order of joining: the faulty worker's is whichever is missing.
            XCTAssertEqual(byRank.count, 2, "\(fault): the faulty worker computed nothing: \(byRank)")
            XCTAssertNil(byRank[-1], "\(fault): two workers were left to compute the units: \(byRank)")
        }
    }

    /// Units are pure functions of their index: computed in any order they give the same parts,
    /// combined they give `Validator`'s figures, and a part that cannot be the unit's is named.
    func testUnitsAreSplitAndCombinedInUnitOrder() throws {
        let config = try Self.copyConfig(accumulation: 1)
        let data = try makeTrainingData(config)
        let model = Transformer(config: config.model, seed: 7)
        let work = ValidationWork(data: data, translating: false, maxLen: config.model.maxLen)
        XCTAssertEqual(work.unitCount, 3)
        let inOrder = try work.computeAll(model: model)
        // Computed backwards, each with its own decoder: the same parts.
        let backwards = try (0..<work.unitCount).reversed().map { try work.compute(unit: $0, model: model) }
        XCTAssertEqual(Array(backwards.reversed()), inOrder)
        XCTAssertEqual(
            work.combine(inOrder).result, try Validator(pairs: data.validationPairs, decode: true).run(model))
        for (unit, part) in inOrder.enumerated() {
            XCTAssertNil(work.problem(with: part, unit: unit, vocab: 12))
            guard case let .loss(stats, exact) = part else { return XCTFail("unit \(unit) is not a loss chunk") }
            var more = stats
            more.tokens += 1
            XCTAssertNotNil(work.problem(with: .loss(more, exact: exact), unit: unit, vocab: 12))
            XCTAssertNotNil(work.problem(with: .loss(stats, exact: 129), unit: unit, vocab: 12))
            XCTAssertNotNil(work.problem(with: .translations([]), unit: unit, vocab: 12))
        }
        XCTAssertNotNil(work.problem(with: inOrder[0], unit: 3, vocab: 12))

        // Translation units after the loss units: 100 sources in batches of 64 and 36.
        let sources = data.validationPairs.prefix(100).map(\.source)
        let translating = ValidationWork(
            pairs: data.validationPairs, decodesPairs: true, translating: sources, maxLen: config.model.maxLen)
        XCTAssertEqual(translating.unitCount, 5)
        let parts = try translating.computeAll(model: model)
        XCTAssertEqual(Array(parts.prefix(3)), inOrder)
        let translations = translating.combine(parts).translations
        // What `transformer translate` gives (the tokenizer is not used on token ids).
        let tokenizer = try BPETokenizer.train(lines: ["a b c"], vocabSize: 12)
        XCTAssertEqual(translations, try TextTranslator(model: model, tokenizer: tokenizer).translate(ids: sources))
        guard case .translations(let outputs) = parts[3] else { return XCTFail("unit 3 is not a translation batch") }
        XCTAssertEqual(outputs.count, 64)
        XCTAssertNil(translating.problem(with: parts[3], unit: 3, vocab: 12))
        XCTAssertNotNil(translating.problem(with: .translations(Array(outputs.dropLast())), unit: 3, vocab: 12))
        XCTAssertNotNil(translating.problem(with: .translations([[12]] + outputs.dropFirst()), unit: 3, vocab: 12))
        XCTAssertNotNil(
            translating.problem(
                with: .translations([[Int32](repeating: 4, count: 100)] + outputs.dropFirst()), unit: 3, vocab: 12))
        XCTAssertNotNil(translating.problem(with: parts[3], unit: 4, vocab: 12))
    }
}
