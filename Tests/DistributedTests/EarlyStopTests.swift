import Distributed
import Foundation
import Training
import XCTest

/// `training.patience` ends a distributed run through the same `isFinished` as a single-process
/// one: the coordinator stops, shuts its workers down, and writes the final checkpoint and summary.
final class EarlyStopTests: XCTestCase {
    static func config(maxSteps: Int, patience: Int) throws -> RunConfig {
        let json = """
            {"name": "early", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                        "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 64, "max_steps": \(maxSteps), "warmup_steps": 20, "validate_every": 5,
                          "checkpoint_every": 100, "keep_checkpoints": 1, "valid_size": 8, "log_every": 5, "patience": \(patience)},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func testPatienceStopsTheCoordinatorAndItsWorkers() async throws {
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "early")
        try await InProcessCluster.train(try Self.config(maxSteps: 5, patience: 0), in: dir, workers: 2)
        // A best validation loss of 0 cannot be beaten: every later validation is one without improvement.
        try CheckpointStore(runDirectory: dir.path).rewriteState(step: 5) { state in
            state["best"] = [
                "metric": "loss", "value": 0.0, "step": 5, "checkpoint": "step-00000005",
                "value_bits": "0000000000000000",
            ]
            state["validations_since_best"] = 0
        }
        try await InProcessCluster.train(
            try Self.config(maxSteps: 100, patience: 2), in: dir, workers: 2, resume: .latest)
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json")))
                as? [String: Any])
        XCTAssertEqual(summary["step"] as? Int, 15)
        XCTAssertEqual(summary["early_stopped"] as? Bool, true)
        XCTAssertEqual(summary["best_step"] as? Int, 5)
        XCTAssertEqual(summary["workers"] as? Int, 2)
        // The final checkpoint (step 15) and the best (step 5) are kept, with keep_checkpoints 1.
        XCTAssertEqual(try CheckpointStore(runDirectory: dir.path).list().map(\.step), [5, 15])
        XCTAssertEqual(try CheckpointStore(runDirectory: dir.path).bestName(), "step-00000005")
    }
}
