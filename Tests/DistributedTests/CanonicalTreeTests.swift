import Distributed
import Foundation
import TensorCore
import Training
import XCTest

/// The gradient of a step is a function of the step's micro-batches alone: one canonical tree over
/// their positions, whoever computes which leaves. So any worker count, a worker lost mid-step, a
/// worker joining mid-run and a re-plan after a deadline all end with the same bits, in the weights
/// and in AdamW's moments.
final class CanonicalTreeTests: XCTestCase {
    static let steps = 8

    static func config(accumulation: Int) throws -> RunConfig {
        let json = """
            {"name": "tree", "model": {"vocab_size": 12, "d_model": 16, "heads": 2, "d_ff": 32, "encoder_layers": 1,
                                       "decoder_layers": 1, "dropout": 0.1, "max_len": 12},
             "training": {"batch_tokens": 24, "accumulation_steps": \(accumulation), "max_steps": \(steps), "warmup_steps": 4,
                          "validate_every": 1000, "checkpoint_every": \(steps), "valid_size": 4, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 5}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    /// Every tensor of the final model and optimizer state, by file and name.
    func state(_ dir: URL) throws -> [String: [UInt32]] {
        var all: [String: [UInt32]] = [:]
        let checkpoint = dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: Self.steps))")
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let f = try SafetensorsFile(path: checkpoint.appendingPathComponent(file).path)
            for t in f.tensors { all["\(file)/\(t.name)"] = try f.floats(named: t.name).map(\.bitPattern) }
        }
        return all
    }

    func metrics(_ dir: URL, _ key: String) throws -> [Int] { try Self.metrics(dir, key) }

    static func metrics(_ dir: URL, _ key: String) throws -> [Int] {
        try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map
        {
            try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?[key] as? Int)
        }
    }

    func assertSameState(
        _ a: [String: [UInt32]], _ b: [String: [UInt32]], _ what: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted(), what, file: file, line: line)
        XCTAssertTrue(
            a.keys.contains { $0.hasPrefix("optimizer.safetensors/") }, "AdamW moments compared too", file: file,
            line: line)
        let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
        XCTAssertEqual(differing, [], "\(what): tensors with other bits", file: file, line: line)
    }

    /// 60 micro-batches a step as 1 x 60, 2 x 30, 3 x 20, 4 x 15 and 5 x 12: only 1, 2 and 4
    /// workers split into aligned power-of-two runs; the others send several tree nodes each.
    func testAnyWorkerCountGivesTheSameBits() async throws {
        var reference: [String: [UInt32]]?
        for workers in 1...5 {
            let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "tree\(workers)")
            try await InProcessCluster.train(try Self.config(accumulation: 60 / workers), in: dir, workers: workers)
            let s = try state(dir)
            if let reference { assertSameState(s, reference, "\(workers) workers vs 1") } else { reference = s }
        }
    }

    /// Three workers with 2 micro-batches each (6 a step), over tcp with short timeouts.
    func train(
        _ dir: URL, coordinator: @escaping (inout CoordinatorOptions) -> Void = { _ in },
        worker: @escaping @Sendable (Int, inout WorkerOptions) -> Void = { _, _ in },
        startWorker: @escaping @Sendable (Int) async -> Void = { _ in }, workers: Int = 3
    ) async throws {
        try await InProcessCluster.train(
            try Self.config(accumulation: 2), in: dir, workers: workers, over: .tcp,
            coordinator: { o in
                o.workers = 3
                o.heartbeatInterval = 0.1
                o.heartbeatTimeout = 2
                o.joinTimeout = 60
                coordinator(&o)
            },
            worker: { i, o in
                o.heartbeatInterval = 0.1
                o.coordinatorTimeout = 1
                o.giveUpAfter = 60
                worker(i, &o)
            }, startWorker: startWorker)
    }

    func testLostJoinedAndTimedOutWorkersChangeNoBit() async throws {
        let uninterrupted = try InProcessCluster.temporaryDirectory(for: self, prefix: "whole")
        try await train(uninterrupted)
        let want = try state(uninterrupted)
        XCTAssertEqual(try metrics(uninterrupted, "workers"), [Int](repeating: 3, count: Self.steps))

        // Rank 2 vanishes when step 3's orders go out: step 3 is re-planned over 2 workers (3
        // micro-batches each, two tree nodes each), and the run ends with 2.
        let lost = try InProcessCluster.temporaryDirectory(for: self, prefix: "lost")
        try await train(lost, worker: { i, o in if i == 2 { o.fault = (3, .vanish) } })
        assertSameState(try state(lost), want, "a worker lost mid-step")
        XCTAssertEqual(try metrics(lost, "workers"), [3, 3, 2, 2, 2, 2, 2, 2])
        XCTAssertEqual(try metrics(lost, "attempts")[2], 2, "step 3 was re-planned")

        // The same loss, and a fourth worker that starts once step 5 is done and takes the slot
        // from step 6 on (the coordinator waits for it there, so the test does not race the run).
        let joined = try InProcessCluster.temporaryDirectory(for: self, prefix: "joined")
        try await train(
            joined, coordinator: { $0.waitForFullClusterBeforeStep = 6 },
            worker: { i, o in if i == 2 { o.fault = (3, .vanish) } },
            startWorker: { i in
                guard i == 3 else { return }
                while (try? Self.metrics(joined, "step").count) ?? 0 < 5 {
                    try? await Task.sleep(nanoseconds: 20_000_000)
                }
            }, workers: 4)
        assertSameState(try state(joined), want, "a worker joining mid-run")
        XCTAssertEqual(
            try metrics(joined, "workers"), [3, 3, 2, 2, 2, 3, 3, 3], "the late worker took the free slot at step 6")

        // Rank 1 hangs on step 2's order (its heartbeats go on): the 1 s step deadline drops it,
        // the step is re-planned, and the hung worker, no longer heard from, reconnects and rejoins.
        let timedOut = try InProcessCluster.temporaryDirectory(for: self, prefix: "deadline")
        try await train(
            timedOut, coordinator: { $0.stepTimeout = 1 }, worker: { i, o in if i == 1 { o.fault = (2, .stall) } })
        assertSameState(try state(timedOut), want, "a re-plan after the step deadline")
        XCTAssertEqual(try metrics(timedOut, "attempts")[1], 2, "step 2 was re-planned")
    }
}
