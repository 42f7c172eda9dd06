import Foundation
import XCTest
import TensorCore
import Training
import Distributed

/// The coordinator validates (and writes checkpoints) on its own actor, so meanwhile it handles no
/// heartbeat: that silence is its own, and must not get its workers dropped when the validation
/// outlasts the heartbeat timeout. (It did: a 26 s validation with BLEU dropped the only worker
/// of a run, which then waited for a worker forever.)
final class CoordinatorLivenessTests: XCTestCase {
    /// A validation of 12000 greedy decodes at width 128 takes seconds (about 6 s here), far beyond a 0.5 s
    /// heartbeat timeout.
    static func config() throws -> RunConfig {
        let json = """
        {"name": "liveness", "model": {"vocab_size": 40, "d_model": 128, "heads": 2, "d_ff": 256, "encoder_layers": 1,
                                       "decoder_layers": 1, "dropout": 0.1, "max_len": 32},
         "training": {"batch_tokens": 96, "accumulation_steps": 1, "max_steps": 4, "warmup_steps": 10,
                      "validate_every": 2, "checkpoint_every": 100, "valid_size": 12000, "log_every": 1},
         "data": {"task": "copy", "copy_max_len": 24}}
        """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func testLongValidationDoesNotDropWorkers() async throws {
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "liveness")
        let timeout = 0.5
        try await InProcessCluster.train(try Self.config(), in: dir, workers: 2, over: .tcp,
                                         coordinator: { o in
                                             o.heartbeatInterval = 0.1; o.heartbeatTimeout = timeout
                                             // Dropped workers notice only after coordinatorTimeout, so the
                                             // coordinator would wait for workers: fail fast then.
                                             o.joinTimeout = 3
                                         },
                                         worker: { _, o in o.heartbeatInterval = 0.1; o.coordinatorTimeout = 10; o.giveUpAfter = 10 })
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(lines.compactMap { $0["step"] as? Int }, [1, 2, 3, 4])
        // The test is only meaningful if the validation after step 2 outlasted the timeout by far.
        let gap = try XCTUnwrap(lines[2]["elapsed_seconds"] as? Double) - XCTUnwrap(lines[1]["elapsed_seconds"] as? Double)
        print("CoordinatorLivenessTests: step 2 -> 3 took \(gap) s (validation included), heartbeat timeout \(timeout) s")
        XCTAssertGreaterThan(gap, 3 * timeout, "validation too short to test anything: raise valid_size")
        XCTAssertEqual(lines.compactMap { $0["workers"] as? Int }, [2, 2, 2, 2], "a worker was dropped")
        XCTAssertEqual(lines.compactMap { $0["attempts"] as? Int }, [1, 1, 1, 1], "a step was re-planned")
        // Per-rank timings, keyed by rank: both ranks, positive, within the step.
        for line in lines {
            let seconds = try XCTUnwrap(line["worker_seconds"] as? [String: Double])
            XCTAssertEqual(seconds.keys.sorted(), ["0", "1"])
            XCTAssertTrue(seconds.values.allSatisfy { $0 > 0 && $0 < 60 })
        }
    }
}
