import Distributed
import Foundation
import TensorCore
import Training
import XCTest

/// The distributed coordinator's event file has a `workers/<rank>/seconds` curve per rank, equal
/// to the `worker_seconds` of metrics.jsonl at every logged step.
final class TensorBoardWorkerCurvesTests: XCTestCase {
    func testEveryRankHasItsStepTimeCurve() async throws {
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "tb-workers")
        let json = """
            {"name": "tbworkers", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                            "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": 6, "warmup_steps": 10, "validate_every": 6,
                          "checkpoint_every": 100, "valid_size": 16, "log_every": 2},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        try await InProcessCluster.train(
            try RunConfig.parse(data: Data(json.utf8), source: "test"), in: dir, workers: 2)
        // JSONDecoder, not JSONSerialization: on Linux the latter misreads numbers that need 16
        // or 17 digits by up to a few ulps, which once in a while moves the Float of a step time.
        struct Line: Decodable {
            var step: Int64
            var worker_seconds: [String: Double]?
        }
        var expected: [String: [Int64: Float]] = [:]
        for text in try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(
            separator: "\n")
        {
            let line = try JSONDecoder().decode(Line.self, from: Data(text.utf8))
            for (rank, seconds) in try XCTUnwrap(line.worker_seconds) {
                expected["workers/\(rank)/seconds", default: [:]][line.step] = Float(seconds)
            }
        }
        XCTAssertEqual(expected.keys.sorted(), ["workers/0/seconds", "workers/1/seconds"])
        let tensorBoard = dir.appendingPathComponent("tensorboard")
        let files = try FileManager.default.contentsOfDirectory(atPath: tensorBoard.path)
        XCTAssertEqual(files.count, 1)
        let bytes = [UInt8](try Data(contentsOf: tensorBoard.appendingPathComponent(try XCTUnwrap(files.first))))
        let (records, problem) = TFRecord.records(in: bytes)
        XCTAssertNil(problem)
        var seen: [String: [Int64: Float]] = [:]
        for record in records {
            let event = try TensorBoardEvent(decoding: record)
            for scalar in event.scalars where scalar.tag.hasPrefix("workers/") {
                seen[scalar.tag, default: [:]][event.step] = scalar.value
            }
        }
        XCTAssertEqual(seen, expected)
        XCTAssertEqual(seen["workers/0/seconds"]?.keys.sorted(), [2, 4, 6])
    }
}
