import Foundation
import TestSupport
import Training
import XCTest

/// The real `coordinator --single-process` on a tmpfs that holds one checkpoint of the run and
/// not two: every checkpoint after the first fails with ENOSPC (a real fault, no hook), the run
/// trains to the end and exits non-zero naming its last checkpoint, and a resume once the file
/// system has grown continues from that checkpoint.
extension CommandLineTests {
    func testFullDiskMidRunKeepsTheLastCheckpointAndFailsTheRun() throws {
        // One checkpoint of this model is about 280 kB (model 91 kB, AdamW moments 182 kB, state),
        // the logs about 20 kB: 400 kB holds the first checkpoint with room to spare, never two.
        let root = try TemporaryFileSystem.mount(kilobytes: 400, for: self)
        let configFile = try temporaryDirectory().appendingPathComponent("tiny.json")
        try Data(
            """
            {"name": "tiny",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": 30, "warmup_steps": 10, "validate_every": 10,
                          "checkpoint_every": 10, "keep_checkpoints": 3, "valid_size": 16, "log_every": 5},
             "data": {"task": "copy", "copy_max_len": 6}}
            """.utf8
        ).write(to: configFile)
        let run = root.path + "/run", checkpoints = run + "/checkpoints"
        let arguments = ["--single-process", "--config", configFile.path, "--run-dir", run, "--threads", "1"]
        let r = try self.run("coordinator", arguments)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("checkpoint \(checkpoints)/step-00000010\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("step 30/30 |"), "training goes on to the end: " + r.stdout)
        XCTAssertTrue(r.stderr.contains("error: cannot write checkpoint \(checkpoints)/step-00000020: "), r.stderr)
        XCTAssertTrue(
            r.stderr.contains(
                "No space left on device; \(checkpoints)/latest still names step-00000010; "
                    + "training continues and the next checkpoint (step 30, or a new best before it) retries"),
            r.stderr)
        let last = "the run's last checkpoint is step 10 at \(checkpoints)/step-00000010"
        XCTAssertTrue(
            r.stderr.contains(
                "error: the run ended without its final checkpoint: the checkpoint of step 30 "
                    + "could not be written (cannot write checkpoint \(checkpoints)/step-00000030: "), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("); " + last + "\n"), r.stderr)
        XCTAssertFalse(r.stdout.contains("done:"), r.stdout)
        XCTAssertEqual(try String(contentsOfFile: checkpoints + "/latest", encoding: .utf8), "step-00000010\n")
        XCTAssertEqual(try CheckpointStore(runDirectory: run).list().map(\.step), [10])
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: checkpoints).filter { $0.hasPrefix(".tmp-") }, [])
        XCTAssertEqual(try CheckpointStore.load(directory: checkpoints + "/step-00000010").step, 10)
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/summary.json")))
                as? [String: Any])
        XCTAssertEqual(summary["step"] as? Int, 30)

        // Room again: --resume continues from step 10 and every checkpoint is written.
        XCTAssertNil(try TemporaryFileSystem.command(["-o", "remount,size=4m", root.path]))
        let resumed = try self.run("coordinator", arguments + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resumed from \(checkpoints)/step-00000010 at step 10"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("done: step 30"), resumed.stdout)
        XCTAssertEqual(try String(contentsOfFile: checkpoints + "/latest", encoding: .utf8), "step-00000030\n")
        XCTAssertEqual(try CheckpointStore(runDirectory: run).list().map(\.step), [10, 20, 30])
    }
}
