import Dispatch
import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

/// The laptop mode's in-process workers (`coordinator --single-process --workers N`) compute at
/// the same time, as workers in separate processes do: each has its own compute queue. With one
/// queue per process they took turns, and two workers trained at the speed of one.
final class InProcessWorkersTests: XCTestCase {
    /// Each body waits for the other's signal: on one shared serial queue the first would wait for
    /// a body that can only start after it, and the 30 s timeouts (which must not fire) would.
    func testTwoComputeQueuesRunTheirBodiesAtTheSameTime() async throws {
        let a = ComputeQueue(label: "test.compute.a"), b = ComputeQueue(label: "test.compute.b")
        let aStarted = DispatchSemaphore(value: 0), bStarted = DispatchSemaphore(value: 0)
        async let aSawB = a.run {
            aStarted.signal()
            return bStarted.wait(timeout: .now() + 30) == .success
        }
        let bSawA = try await b.run {
            bStarted.signal()
            return aStarted.wait(timeout: .now() + 30) == .success
        }
        let sawB = try await aSawB
        XCTAssertTrue(sawB && bSawA, "the two queues' bodies did not run at the same time")
    }

    /// Two in-process workers over inproc://: in some step their computes overlap in time. With a
    /// shared queue no step's could (one started only after the other ended).
    func testInProcessWorkersComputeAtTheSameTime() async throws {
        let json = """
            {"name": "concurrent", "model": {"vocab_size": 12, "d_model": 64, "heads": 4, "d_ff": 256, "encoder_layers": 2,
                                             "decoder_layers": 2, "dropout": 0.1, "max_len": 40},
             "training": {"batch_tokens": 1024, "accumulation_steps": 1, "max_steps": 4, "warmup_steps": 10,
                          "validate_every": 1000, "checkpoint_every": 1000, "valid_size": 4, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 30}}
            """
        let config = try RunConfig.parse(data: Data(json.utf8), source: "test")
        let timelines = GradientStreamingTests.Timelines()
        let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "concurrent")
        try await InProcessCluster.train(
            config, in: dir, workers: 2, over: .inproc,
            worker: { _, o in o.gradientSendObserver = { timelines.add($0) } })
        let byStep = Dictionary(grouping: timelines.values, by: \.step)
        XCTAssertEqual(byStep.keys.sorted(), [1, 2, 3, 4])
        var overlapping = 0
        for (step, pair) in byStep {
            XCTAssertEqual(pair.map(\.rank).sorted(), [0, 1], "step \(step)")
            for t in pair { XCTAssertLessThan(t.computeStarted, t.computeEnded, "step \(step) rank \(t.rank)") }
            guard pair.count == 2 else { continue }
            let latestStart = pair.map(\.computeStarted).max() ?? 0
            let earliestEnd = pair.map(\.computeEnded).min() ?? 0
            if latestStart < earliestEnd { overlapping += 1 }
        }
        XCTAssertGreaterThan(overlapping, 0, "no step's two computes overlapped: the workers took turns")
    }
}
