import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

/// `training.best_metric` and `training.patience`: `checkpoints/best`, its protection from
/// `keep_checkpoints`, early stopping, and both surviving a resume.
final class BestCheckpointTests: XCTestCase {
    static func config(maxSteps: Int, checkpointEvery: Int = 5, keep: Int = 10, patience: Int = 0) throws -> RunConfig {
        let json = """
            {"name": "bestcopy",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": \(maxSteps), "warmup_steps": 10, "validate_every": 5,
                          "checkpoint_every": \(checkpointEvery), "keep_checkpoints": \(keep), "valid_size": 16,
                          "log_every": 5, "patience": \(patience)},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("best-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    @discardableResult
    func run(_ config: RunConfig, dir: URL, resume: RunOptions.Resume = .fresh) throws -> (TrainingRun, RunSummary) {
        Parallel.threads = 1
        var o = RunOptions(runDirectory: dir)
        o.resume = resume
        o.printProgress = false
        let r = try TrainingRun(config: config, options: o)
        let summary = try r.run()
        return (r, summary)
    }

    func checkpointSteps(_ dir: URL) throws -> [Int] {
        try CheckpointStore(runDirectory: dir.path).list().map(\.step)
    }

    func jsonObject(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func lines(_ url: URL) throws -> [[String: Any]] {
        try String(decoding: Data(contentsOf: url), as: UTF8.self).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// A 5-step run whose step-5 checkpoint then claims a best validation loss of 0, which no
    /// later validation can beat (a loss is never below 0): every validation after a resume is
    /// one without improvement, whatever the arithmetic of this machine.
    func runWithUnbeatableBest(_ dir: URL) throws {
        try run(try Self.config(maxSteps: 5), dir: dir)
        try CheckpointStore(runDirectory: dir.path).rewriteState(step: 5) { state in
            state["best"] = [
                "metric": "loss", "value": 0.0, "step": 5, "checkpoint": "step-00000005",
                "value_bits": "0000000000000000",
            ]
            state["validations_since_best"] = 0
        }
    }

    /// Checkpoints only every 100 steps: each validation that improves the loss still gets a
    /// checkpoint of its step, `best` names the lowest, and summary.json records it.
    func testEveryNewBestGetsACheckpointAndIsRecorded() throws {
        let dir = try temporaryDirectory()
        let (_, summary) = try run(try Self.config(maxSteps: 30, checkpointEvery: 100), dir: dir)
        let validations = try lines(dir.appendingPathComponent("valid.jsonl"))
        XCTAssertEqual(validations.count, 6)
        var best = Double.infinity, bestStep = 0, improvements: [Int] = []
        for v in validations {
            let loss = try XCTUnwrap(v["loss"] as? Double), step = try XCTUnwrap(v["step"] as? Int)
            if loss < best {
                best = loss
                bestStep = step
                improvements.append(step)
            }
        }
        // Step 5 (not a checkpoint step) and at least one later validation improved.
        XCTAssertEqual(improvements.first, 5)
        XCTAssertGreaterThan(improvements.count, 1)
        XCTAssertEqual(try checkpointSteps(dir), Array(Set(improvements + [30])).sorted())
        let store = CheckpointStore(runDirectory: dir.path)
        XCTAssertEqual(try store.bestName(), CheckpointStore.directoryName(step: bestStep))
        XCTAssertEqual(summary.best, BestValidation(metric: .loss, value: best, step: bestStep))
        XCTAssertNil(summary.earlyStopNote)
        let s = try jsonObject(dir.appendingPathComponent("summary.json"))
        XCTAssertEqual(s["best_metric"] as? String, "loss")
        XCTAssertEqual(s["best_step"] as? Int, bestStep)
        XCTAssertEqual(s["best_value"] as? Double, best)
        XCTAssertEqual(
            s["best_checkpoint"] as? String,
            store.checkpointsDirectory + "/" + CheckpointStore.directoryName(step: bestStep))
        XCTAssertEqual(s["early_stopped"] as? Bool, false)
        // The newest state.json carries the best, bit for bit.
        let state = try CheckpointStore.load(directory: store.checkpointsDirectory + "/step-00000030").stateObject()
        let saved = try XCTUnwrap(state["best"] as? [String: Any])
        XCTAssertEqual(saved["step"] as? Int, bestStep)
        XCTAssertEqual(saved["value_bits"] as? String, String(format: "%016llx", best.bitPattern))
    }

    /// With keep_checkpoints 1 and 2, the best checkpoint stays while newer ones rotate; patience 3
    /// ends the run at the third validation without improvement, with a checkpoint there.
    func testBestIsNeverRotatedAwayAndPatienceStopsTheRun() throws {
        for keep in [1, 2] {
            let dir = try temporaryDirectory()
            try runWithUnbeatableBest(dir)
            let (r, summary) = try run(
                try Self.config(maxSteps: 60, keep: keep, patience: 3), dir: dir, resume: .latest)
            XCTAssertEqual(r.progress.step, 20, "keep \(keep)")
            XCTAssertTrue(r.session.stoppedEarly)
            XCTAssertTrue(r.session.isFinished)
            XCTAssertEqual(try checkpointSteps(dir), keep == 1 ? [5, 20] : [5, 15, 20], "keep \(keep)")
            let store = CheckpointStore(runDirectory: dir.path)
            XCTAssertEqual(try store.bestName(), "step-00000005")
            XCTAssertEqual(summary.best, BestValidation(metric: .loss, value: 0, step: 5))
            XCTAssertEqual(
                summary.earlyStopNote,
                "early stop at step 20: no improvement of valid loss for 3 validations; "
                    + "best 0.0000 at step 5, \(store.checkpointsDirectory)/step-00000005")
            let s = try jsonObject(dir.appendingPathComponent("summary.json"))
            XCTAssertEqual(s["early_stopped"] as? Bool, true)
            XCTAssertEqual(s["step"] as? Int, 20)
            XCTAssertEqual(s["best_step"] as? Int, 5)
        }
    }

    /// The patience counter and the best survive a resume: 1 validation without improvement
    /// before the stop at step 10, 2 more after it, so patience 3 stops at 20 (not 25).
    func testResumedRunKeepsBestAndPatience() throws {
        let dir = try temporaryDirectory()
        try runWithUnbeatableBest(dir)
        try run(try Self.config(maxSteps: 10, patience: 3), dir: dir, resume: .latest)
        let state = try CheckpointStore.load(directory: dir.path + "/checkpoints/step-00000010").stateObject()
        XCTAssertEqual(state["validations_since_best"] as? Int, 1)
        XCTAssertEqual((state["best"] as? [String: Any])?["step"] as? Int, 5)
        let (r, summary) = try run(try Self.config(maxSteps: 60, patience: 3), dir: dir, resume: .latest)
        XCTAssertEqual(r.progress.step, 20)
        XCTAssertEqual(summary.best?.step, 5)
        XCTAssertNotNil(summary.earlyStopNote)
        // Resuming a run that stopped early does not train on: it is finished.
        let (again, _) = try run(try Self.config(maxSteps: 60, patience: 3), dir: dir, resume: .latest)
        XCTAssertEqual(again.progress.step, 20)
        XCTAssertTrue(again.session.stoppedEarly)
    }

    /// A checkpoint from before best checkpoints (no best fields) still resumes; the first
    /// validation after it becomes the best.
    func testCheckpointWithoutBestFieldsResumes() throws {
        let dir = try temporaryDirectory()
        try run(try Self.config(maxSteps: 5), dir: dir)
        try CheckpointStore(runDirectory: dir.path).rewriteState(step: 5) { state in
            state["best"] = nil
            state["validations_since_best"] = nil
        }
        try FileManager.default.removeItem(atPath: dir.path + "/checkpoints/best")
        let (_, summary) = try run(try Self.config(maxSteps: 10), dir: dir, resume: .latest)
        XCTAssertEqual(summary.best?.step, 10)
        XCTAssertEqual(try CheckpointStore(runDirectory: dir.path).bestName(), "step-00000010")
    }

    /// A damaged `best` pointer is a clear error where it is read, and a resume rewrites it from
    /// the checkpoint's state.
    func testCorruptBestPointerIsReportedAndRepairedOnResume() throws {
        let dir = try temporaryDirectory()
        let (_, summary) = try run(try Self.config(maxSteps: 10), dir: dir)
        let store = CheckpointStore(runDirectory: dir.path)
        let expected = try XCTUnwrap(summary.best).checkpointName
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: store.bestPath))
        let problem = CheckpointError.invalidLatestPointer(
            path: store.bestPath, reason: "does not hold a step-NNNNNNNN directory name")
        XCTAssertThrowsError(try store.bestName()) { XCTAssertEqual($0 as? CheckpointError, problem) }
        XCTAssertThrowsError(try CheckpointModel(path: store.bestPath)) { error in
            XCTAssertEqual(
                String(describing: error),
                "checkpoint pointer \(store.bestPath) is unusable: "
                    + "does not hold a step-NNNNNNNN directory name")
        }
        try run(try Self.config(maxSteps: 10), dir: dir, resume: .latest)
        XCTAssertEqual(try store.bestName(), expected)
        XCTAssertEqual(try CheckpointModel(path: store.bestPath).directory, store.checkpointsDirectory + "/" + expected)
    }

    /// The store itself: preserved steps survive pruning and do not use up `keep`.
    func testStorePreservesStepsOutsideKeep() throws {
        let dir = try temporaryDirectory()
        let store = CheckpointStore(runDirectory: dir.path)
        let value: [Float] = [1]
        try value.withUnsafeBufferPointer { buffer in
            let record = TensorRecord(name: "w", shape: [1], float32: try XCTUnwrap(buffer.baseAddress))
            for step in 1...6 {
                try store.write(
                    step: step, model: [record], optimizer: [], state: ["step": step], keep: 2, preserving: [2])
            }
        }
        XCTAssertEqual(try store.list().map(\.step), [2, 5, 6])
        XCTAssertNil(try store.bestName())
        try store.writeBestPointer(step: 2)
        XCTAssertEqual(try store.bestName(), "step-00000002")
        XCTAssertThrowsError(try store.writeBestPointer(step: 3))
    }
}
