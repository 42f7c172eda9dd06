import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// In-process training runs: bitwise resume, worker/accumulation equivalence, skipped steps.
final class TrainingRunTests: XCTestCase {
    static func config(maxSteps: Int = 30, accumulation: Int = 1, checkpointEvery: Int = 15) throws -> RunConfig {
        let json = """
            {"name": "tinycopy",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "accumulation_steps": \(accumulation), "max_steps": \(maxSteps),
                          "warmup_steps": 10, "validate_every": 15, "checkpoint_every": \(checkpointEvery),
                          "keep_checkpoints": 5, "valid_size": 16, "log_every": 5},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    @discardableResult
    func run(_ config: RunConfig, dir: URL, workers: Int = 1, resume: RunOptions.Resume = .fresh) throws -> TrainingRun
    {
        var o = RunOptions(runDirectory: dir)
        o.workers = workers
        o.resume = resume
        o.printProgress = false
        let r = try TrainingRun(config: config, options: o)
        try r.run()
        return r
    }

    func tensorBytes(_ dir: URL, step: Int) throws -> (model: Data, optimizer: Data) {
        let c = dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: step))")
        return (
            try Data(contentsOf: c.appendingPathComponent("model.safetensors")),
            try Data(contentsOf: c.appendingPathComponent("optimizer.safetensors"))
        )
    }

    /// A run stopped at step 15 (after its checkpoint) and resumed to 30 equals an uninterrupted
    /// 30-step run byte for byte, weights and AdamW moments.
    func testResumeIsBitwiseIdentical() throws {
        let a = try temporaryDirectory(), b = try temporaryDirectory()
        Parallel.threads = 1
        try run(try Self.config(maxSteps: 30), dir: a)
        try run(try Self.config(maxSteps: 15), dir: b)
        let resumed = try run(try Self.config(maxSteps: 30), dir: b, resume: .latest)
        XCTAssertEqual(resumed.progress.step, 30)
        let x = try tensorBytes(a, step: 30), y = try tensorBytes(b, step: 30)
        XCTAssertEqual(x.model, y.model, "weights differ after resume")
        XCTAssertEqual(x.optimizer, y.optimizer, "AdamW moments differ after resume")
        // The uninterrupted run really moved: step 15 and step 30 weights differ.
        XCTAssertNotEqual(try tensorBytes(a, step: 15).model, x.model)
    }

    /// Same global batch: 1 worker x 2 micro-batches, resumed as 2 workers x 1 micro-batch, equals
    /// 1 x 2 throughout (the data cursor is global), and the thread count changes nothing either.
    func testResumeWithAnotherWorkerCountAndThreadCount() throws {
        let a = try temporaryDirectory(), b = try temporaryDirectory()
        Parallel.threads = 1
        try run(try Self.config(maxSteps: 30, accumulation: 2), dir: a)
        try run(try Self.config(maxSteps: 15, accumulation: 2), dir: b)
        Parallel.threads = 2
        try run(try Self.config(maxSteps: 30, accumulation: 1), dir: b, workers: 2, resume: .latest)
        Parallel.threads = 1
        XCTAssertEqual(try tensorBytes(a, step: 30).model, try tensorBytes(b, step: 30).model)
    }

    /// Corrupting the newest checkpoint makes --resume fall back to the previous valid one.
    func testResumeFallsBackToNewestValidCheckpoint() throws {
        let dir = try temporaryDirectory()
        Parallel.threads = 1
        try run(try Self.config(maxSteps: 30), dir: dir)
        let newest = dir.appendingPathComponent("checkpoints/step-00000030/model.safetensors")
        var bytes = try Data(contentsOf: newest)
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: newest)
        var o = RunOptions(runDirectory: dir)
        o.resume = .latest
        o.printProgress = false
        let r = try TrainingRun(config: try Self.config(maxSteps: 30), options: o)
        XCTAssertEqual(r.progress.step, 15)
    }

    /// A non-finite gradient skips the step: no AdamW step, no schedule step, counted.
    func testNonFiniteGradientSkipsTheStep() throws {
        let cfg = try Self.config()
        let layout = ParameterLayout(config: cfg.model)
        let opt = OptimizerStep(layout: layout, config: cfg)
        let params = FloatBuffer(count: layout.totalCount), grads = FloatBuffer(count: layout.totalCount)
        for i in 0..<layout.totalCount {
            params[i] = 1
            grads[i] = 0.5
        }
        grads[7] = .nan
        let before = params.array
        let outcome = opt.apply(
            parameters: params.pointer, gradients: grads.pointer, count: layout.totalCount, tokens: 10)
        XCTAssertFalse(outcome.applied)
        XCTAssertEqual(opt.adam.step, 0)
        XCTAssertEqual(opt.skippedSteps, 1)
        XCTAssertEqual(params.array, before)
        for i in 0..<layout.totalCount { grads[i] = 0.5 }
        let ok = opt.apply(parameters: params.pointer, gradients: grads.pointer, count: layout.totalCount, tokens: 10)
        XCTAssertTrue(ok.applied)
        XCTAssertEqual(opt.adam.step, 1)
        // The schedule restarted from optimizer step 1, not from the skipped attempt.
        XCTAssertEqual(ok.learningRate, outcome.learningRate)
    }

    /// The run directory holds the files of SPEC.md with their required keys.
    func testRunWritesContractFiles() throws {
        let dir = try temporaryDirectory()
        Parallel.threads = 1
        try run(try Self.config(maxSteps: 30), dir: dir)
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        XCTAssertEqual(metrics.count, 6)
        for key in [
            "step", "loss", "lr", "grad_norm", "tokens", "tokens_per_second", "elapsed_seconds", "workers",
            "skipped_steps",
        ] {
            XCTAssertNotNil(metrics[0][key], "metrics.jsonl lacks \(key)")
        }
        let valid = try String(contentsOf: dir.appendingPathComponent("valid.jsonl"), encoding: .utf8).split(
            separator: "\n")
        XCTAssertEqual(valid.count, 2)
        let v = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(valid[0].utf8)) as? [String: Any])
        for key in ["step", "loss", "perplexity", "token_accuracy", "sequence_accuracy"] {
            XCTAssertNotNil(v[key], key)
        }
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json")))
                as? [String: Any])
        for key in [
            "step", "train_loss", "valid_loss", "token_accuracy", "sequence_accuracy", "tokens_per_second",
            "wall_seconds", "peak_rss_bytes", "workers",
        ] { XCTAssertNotNil(summary[key], "summary.json lacks \(key)") }
        XCTAssertEqual(
            try String(contentsOf: dir.appendingPathComponent("checkpoints/latest"), encoding: .utf8),
            "step-00000030\n")
        let ckpt = dir.appendingPathComponent("checkpoints/step-00000030")
        let model = try SafetensorsFile(path: ckpt.appendingPathComponent("model.safetensors").path)
        XCTAssertEqual(model["encoder.layers.0.self_attn.in_proj_weight"]?.shape, [96, 32])
        XCTAssertEqual(model["decoder.layers.0.multihead_attn.out_proj.weight"]?.shape, [32, 32])
        XCTAssertEqual(model["embedding.weight"]?.shape, [12, 32])
        XCTAssertNil(model["generator.weight"])
        let state = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: ckpt.appendingPathComponent("state.json")))
                as? [String: Any])
        XCTAssertEqual((state["config"] as? [String: Any])?["name"] as? String, "tinycopy")
        XCTAssertEqual(state["data_cursor"] as? Int, 30)
    }
}
