import Distributed
import Foundation
import TensorCore
import Training
import XCTest

/// Liveness must not depend on what the coordinator computes. Validation and checkpoints run on
/// the coordinator's actor; its heartbeats come from its socket thread, so workers keep hearing
/// it, and it judges workers by when their messages reached that thread. (Before, a validation
/// longer than the workers' timeout made every worker reconnect, and a longer one made them all
/// give up: CI on AMD machines saw exactly that.)
final class CoordinatorLivenessTests: XCTestCase {
    static func config() throws -> RunConfig {
        let json = """
            {"name": "liveness", "model": {"vocab_size": 16, "d_model": 16, "heads": 2, "d_ff": 32, "encoder_layers": 1,
                                           "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 64, "accumulation_steps": 1, "max_steps": 4, "warmup_steps": 10,
                          "validate_every": 2, "checkpoint_every": 100, "valid_size": 16, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 8}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    /// Each validation blocks the coordinator's actor for 6 s (a test hook), 6x the 1 s after
    /// which workers reconnect and give up and after which the coordinator drops a worker. The run
    /// must go through with the same two ranks, no re-plan, and the silence must not be charged
    /// to anyone, whatever the speed of the machine.
    func testLongValidationDropsNoWorkerAndLosesNoCoordinator() async throws {
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "liveness")
        let timeout = 1.0, busy = 6.0
        let started = Date()
        try await InProcessCluster.train(
            try Self.config(), in: dir, workers: 2, over: .tcp,
            coordinator: { o in
                o.heartbeatInterval = 0.1
                o.heartbeatTimeout = timeout
                o.extraValidationSeconds = busy
                // A lost worker would make the coordinator wait: fail fast then.
                o.joinTimeout = 3
            },
            worker: { _, o in
                o.heartbeatInterval = 0.1
                o.coordinatorTimeout = timeout
                o.giveUpAfter = timeout
            })
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        XCTAssertEqual(lines.compactMap { $0["step"] as? Int }, [1, 2, 3, 4])
        // Two validations (steps 2 and 4) were held for `busy` each: the test really covered them.
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2 * busy)
        XCTAssertEqual(lines.compactMap { $0["workers"] as? Int }, [2, 2, 2, 2], "a worker was dropped")
        XCTAssertEqual(lines.compactMap { $0["attempts"] as? Int }, [1, 1, 1, 1], "a step was re-planned")
        // status.json, rewritten after every step: the last step, both workers as the coordinator saw them.
        let status = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("status.json")))
                as? [String: Any])
        XCTAssertEqual(status["step"] as? Int, 4)
        XCTAssertEqual(status["max_steps"] as? Int, 4)
        XCTAssertEqual(status["eta_seconds"] as? Double, 0)
        XCTAssertEqual((status["last_validation"] as? [String: Any])?["step"] as? Int, 4)
        let workers = try XCTUnwrap(status["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.compactMap { $0["rank"] as? Int }, [0, 1])
        XCTAssertEqual(Set(workers.compactMap { $0["name"] as? String }), ["w0", "w1"])
        XCTAssertTrue(workers.allSatisfy { ($0["seconds_since_heard"] as? Double).map { $0 >= 0 && $0 < 60 } ?? false })
        // The same two ranks throughout: a worker that had reconnected would have come back as rank 2 or 3.
        for line in lines {
            let seconds = try XCTUnwrap(line["worker_seconds"] as? [String: Double])
            XCTAssertEqual(seconds.keys.sorted(), ["0", "1"])
            XCTAssertTrue(seconds.values.allSatisfy { $0 > 0 && $0 < 60 })
        }
    }

    /// The reconnect backoff doubles from 0.25 s to at most 5 s; `Worker.run` counts it from the
    /// last join, so a worker that has rejoined many times still retries at once after a loss.
    func testReconnectBackoff() {
        XCTAssertEqual((0..<8).map { Worker.reconnectDelay(failures: $0) }, [0.25, 0.5, 1, 2, 4, 5, 5, 5])
    }
}
