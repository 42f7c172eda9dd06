import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// Float16 on the wire, with the real actors over tcp:// on loopback: gradients with dynamic loss
/// scaling, the weight broadcast, the bytes they take, an injected overflow, resume, and the
/// single-process driver's equality with one worker.
final class Float16WireTests: XCTestCase {
    static func config(
        steps: Int, parameters: Bool, gradients: Bool, activations: Bool = false, checkpointEvery: Int = 1,
        accumulation: Int = 1
    ) throws -> RunConfig {
        let json = """
            {"name": "f16", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                      "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 96, "accumulation_steps": \(accumulation), "max_steps": \(steps), "warmup_steps": 10,
                          "validate_every": 1000, "checkpoint_every": \(checkpointEvery), "keep_checkpoints": 100,
                          "valid_size": 8, "log_every": 1,
                          "float16": {"parameters": \(parameters), "activations": \(activations), "gradients": \(gradients)}},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL { try InProcessCluster.temporaryDirectory(for: self, prefix: "f16") }

    /// Trains with `workers` workers over tcp loopback; `inject` maps a worker index to the step at
    /// which it sends an infinite gradient. Returns the coordinator's final loss scale.
    @discardableResult
    func train(
        _ cfg: RunConfig, dir: URL, workers: Int, inject: [Int: Int] = [:],
        resume: RunOptions.Resume = .fresh
    ) async throws -> LossScaleState {
        let coordinator = try await InProcessCluster.train(
            cfg, in: dir, workers: workers, resume: resume, over: .tcp,
            worker: { i, o in o.injectNonFiniteAtStep = inject[i] })
        return await coordinator.lossScale
    }

    func metrics(_ dir: URL) throws -> [[String: Any]] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map
        {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func checkpoint(_ dir: URL, step: Int) -> URL {
        dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: step))")
    }

    func weights(_ dir: URL, step: Int) throws -> Data {
        try Data(contentsOf: checkpoint(dir, step: step).appendingPathComponent("model.safetensors"))
    }

    func state(_ dir: URL, step: Int) throws -> [String: Any] {
        let data = try Data(contentsOf: checkpoint(dir, step: step).appendingPathComponent("state.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A worker's Float16 replica takes a Float16 bucket bit for bit and rounds a Float32 one.
    func testBucketsDeliverFloat16Bits() throws {
        let values: [Float] = [1, 1.0 / 3, -2.5, 70000, 0.1, 0.2]
        let plan = BucketPlan(elementCount: 6, maxBucketBytes: 16)
        for type in [TensorElementType.float16, .float32] {
            var bits = [UInt16](repeating: 0, count: 6)
            for bucket in plan {
                let b = values.withUnsafeBufferPointer {
                    TensorBucket(step: 1, bucket: bucket, of: plan, from: $0.baseAddress!, as: type)
                }
                XCTAssertEqual(b.payload.count, bucket.count * type.byteSize)
                try bits.withUnsafeMutableBufferPointer { try b.copyHalfValues(into: $0.baseAddress!, arenaCount: 6) }
            }
            XCTAssertEqual(bits, [0x3C00, 0x3555, 0xC100, 0x7C00, 0x2E66, 0x3266], "\(type)")
        }
    }

    /// Payload bytes per step: parameters x 4 in Float32, x 2 in Float16, for gradients and weights.
    func testFloat16HalvesGradientAndWeightBytes() async throws {
        let plain = try Self.config(steps: 2, parameters: false, gradients: false, checkpointEvery: 100)
        let half = try Self.config(steps: 2, parameters: true, gradients: true, checkpointEvery: 100)
        let count = ParameterLayout(config: plain.model).totalCount
        let a = try temporaryDirectory(), b = try temporaryDirectory()
        try await train(plain, dir: a, workers: 2)
        try await train(half, dir: b, workers: 2)
        for (dir, bytes) in [(a, 4), (b, 2)] {
            let lines = try metrics(dir)
            XCTAssertEqual(lines.count, 2)
            for line in lines {
                XCTAssertEqual(
                    line["gradient_bytes_received"] as? Int, 2 * count * bytes, "2 workers send every parameter")
                XCTAssertEqual(line["weight_bytes_sent"] as? Int, 2 * count * bytes, "broadcast to 2 workers")
            }
        }
        XCTAssertEqual(try metrics(a).first?["loss_scale"] as? Double, 1)
        XCTAssertEqual(try metrics(b).first?["loss_scale"] as? Double, 65536)
    }

    /// Worker 1 sends an inf at step 3: every worker skips exactly step 3 (weights and AdamW step
    /// unchanged across it, the schedule does not advance), the scale halves from step 4 on, and
    /// a resume from step 5 restores the halved scale and its counters.
    func testInjectedOverflowSkipsThatStepEverywhereAndHalvesTheScale() async throws {
        let dir = try temporaryDirectory()
        let cfg = try Self.config(steps: 5, parameters: true, gradients: true)
        let final = try await train(cfg, dir: dir, workers: 2, inject: [1: 3])
        let lines = try metrics(dir)
        XCTAssertEqual(lines.compactMap { $0["step"] as? Int }, [1, 2, 3, 4, 5])
        XCTAssertEqual(lines.compactMap { $0["skipped_steps"] as? Int }, [0, 0, 1, 1, 1])
        XCTAssertEqual(lines.compactMap { $0["loss_scale"] as? Double }, [65536, 65536, 65536, 32768, 32768])
        // The skipped step's loss and gradient norm are not finite: null in the JSON line.
        XCTAssertTrue(lines[2]["loss"] is NSNull)
        XCTAssertTrue(lines[2]["grad_norm"] is NSNull)
        // No schedule step: step 4 uses the learning rate step 3 would have used.
        XCTAssertEqual(lines[3]["lr"] as? Double, lines[2]["lr"] as? Double)
        XCTAssertNotEqual(lines[2]["lr"] as? Double, lines[1]["lr"] as? Double)
        XCTAssertEqual(try weights(dir, step: 3), try weights(dir, step: 2), "the skipped step changed the weights")
        XCTAssertNotEqual(try weights(dir, step: 4), try weights(dir, step: 3))
        XCTAssertNotEqual(try weights(dir, step: 2), try weights(dir, step: 1))
        XCTAssertEqual(try state(dir, step: 3)["optimizer_step"] as? Int, 2)
        XCTAssertEqual(try state(dir, step: 5)["optimizer_step"] as? Int, 4)
        let saved = try XCTUnwrap(try state(dir, step: 5)["loss_scale"] as? [String: Any])
        XCTAssertEqual(saved["scale"] as? Double, 32768)
        XCTAssertEqual(saved["clean_steps"] as? Int, 2)
        XCTAssertEqual(saved["hysteresis_left"] as? Int, 2)
        XCTAssertEqual(final.scale, 32768)
        XCTAssertEqual(final.cleanSteps, 2)

        let more = try Self.config(steps: 6, parameters: true, gradients: true)
        let resumed = try await train(more, dir: dir, workers: 2, resume: .latest)
        XCTAssertEqual(resumed.scale, 32768)
        XCTAssertEqual(resumed.cleanSteps, 3)
        XCTAssertEqual(resumed.hysteresisLeft, 2)
        XCTAssertEqual(try metrics(dir).last?["loss_scale"] as? Double, 32768)
        XCTAssertEqual(try metrics(dir).last?["skipped_steps"] as? Int, 1)
    }

    /// With all Float16 options on, `coordinator --single-process` (TrainingRun) computes
    /// exactly what the coordinator computes with one worker, and with two workers what two
    /// logical workers compute (the same roundings of each rank's sum).
    func testSingleProcessEqualsWorkersWithFloat16() async throws {
        for (workers, accumulation) in [(1, 2), (2, 1)] {
            let cfg = try Self.config(
                steps: 4, parameters: true, gradients: true, activations: true, checkpointEvery: 4,
                accumulation: accumulation)
            let distributed = try temporaryDirectory(), local = try temporaryDirectory()
            try await train(cfg, dir: distributed, workers: workers)
            Parallel.threads = 1
            var o = RunOptions(runDirectory: local)
            o.printProgress = false
            o.workers = workers
            try TrainingRun(config: cfg, options: o).run()
            XCTAssertEqual(try weights(distributed, step: 4), try weights(local, step: 4), "\(workers) worker(s)")
            XCTAssertEqual(
                try metrics(distributed).compactMap { $0["loss"] as? Double },
                try metrics(local).compactMap { $0["loss"] as? Double })
        }
    }
}
