import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// Same global batch, different splits: 1 worker x 4 micro-batches, 2 x 2 and 4 x 1 train the same
/// model. Coordinator and workers are the real actors, in one process over inproc:// sockets.
final class EquivalenceTests: XCTestCase {
    static func config(accumulation: Int, steps: Int) throws -> RunConfig {
        let json = """
            {"name": "eq", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                     "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 96, "accumulation_steps": \(accumulation), "max_steps": \(steps), "warmup_steps": 10,
                          "validate_every": 1000, "checkpoint_every": 5, "keep_checkpoints": 100, "valid_size": 8, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL { try InProcessCluster.temporaryDirectory(for: self, prefix: "eq") }

    /// Trains with `workers` in-process workers and returns the run directory.
    func train(workers: Int, accumulation: Int, steps: Int) async throws -> URL {
        let dir = try temporaryDirectory()
        try await InProcessCluster.train(
            try Self.config(accumulation: accumulation, steps: steps), in: dir, workers: workers)
        return dir
    }

    func weights(_ dir: URL, step: Int) throws -> [Float] {
        let file = try SafetensorsFile(
            path: dir.appendingPathComponent(
                "checkpoints/\(CheckpointStore.directoryName(step: step))/model.safetensors"
            ).path)
        return try file.tensors.flatMap { try file.floats(named: $0.name) }
    }

    func losses(_ dir: URL) throws -> [Double] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map
        {
            try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double)
        }
    }

    func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = a.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? .infinity
    }

    func testWorkerCountsGiveTheSameModel() async throws {
        let one = try await train(workers: 1, accumulation: 4, steps: 50)
        let two = try await train(workers: 2, accumulation: 2, steps: 50)
        let four = try await train(workers: 4, accumulation: 1, steps: 50)
        let w1 = try weights(one, step: 5), w2 = try weights(two, step: 5), w4 = try weights(four, step: 5)
        XCTAssertEqual(w1.count, w2.count)
        XCTAssertLessThanOrEqual(relativeDifference(w1, w2), 1e-6)
        XCTAssertLessThanOrEqual(relativeDifference(w1, w4), 1e-6)
        XCTAssertNotEqual(w1, try weights(one, step: 10), "the model must actually train")
        let l1 = try losses(one), l2 = try losses(two), l4 = try losses(four)
        XCTAssertEqual(l1.count, 50)
        // Logged losses are Double sums grouped per worker: equal to rounding of Double.
        for (a, (b, c)) in zip(l1, zip(l2, l4)) {
            XCTAssertEqual(b, a, accuracy: 1e-12 * abs(a))
            XCTAssertEqual(c, a, accuracy: 1e-12 * abs(a))
        }
        // The stretch goal holds: micro-batch gradients are summed in one fixed tree whatever the
        // worker count, so the weights are bit-identical, after 5 steps and after 50.
        XCTAssertEqual(w1, w2)
        XCTAssertEqual(w1, w4)
        XCTAssertEqual(try weights(one, step: 50), try weights(two, step: 50))
        XCTAssertEqual(try weights(one, step: 50), try weights(four, step: 50))
    }

    /// The single-process driver (no sockets) and the coordinator with one worker are the same math.
    func testSingleProcessEqualsOneWorker() async throws {
        let distributed = try await train(workers: 1, accumulation: 4, steps: 5)
        Parallel.threads = 1
        let dir = try temporaryDirectory()
        var o = RunOptions(runDirectory: dir)
        o.printProgress = false
        try TrainingRun(config: try Self.config(accumulation: 4, steps: 5), options: o).run()
        XCTAssertEqual(try weights(distributed, step: 5), try weights(dir, step: 5))
    }
}
