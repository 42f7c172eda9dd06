import Foundation
import TestSupport
import Training
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Checkpoints that cannot be written (disk full, read-only file system) with real faults: a small
/// tmpfs filled up, and a read-only bind mount of `checkpoints/`. Mounting needs root (CI runs as
/// root, where `chmod` would not stop a write); elsewhere these tests skip saying so.
final class DiskFaultTests: XCTestCase {
    static func config(maxSteps: Int, checkpointEvery: Int, validateEvery: Int) throws -> RunConfig {
        let json = """
            {"name": "diskfault",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": \(maxSteps), "warmup_steps": 10, "validate_every": \(validateEvery),
                          "checkpoint_every": \(checkpointEvery), "keep_checkpoints": 3, "valid_size": 16, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func tmpfs(kilobytes: Int) throws -> URL { try TemporaryFileSystem.mount(kilobytes: kilobytes, for: self) }

    /// What `body` writes to standard error (file descriptor 2).
    func standardError(_ body: () throws -> Void) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)").path
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        guard fd >= 0 else { throw XCTSkip("cannot create \(path)") }
        let saved = dup(2)
        dup2(fd, 2)
        close(fd)
        var thrown: Error?
        do { try body() } catch { thrown = error }
        dup2(saved, 2)
        close(saved)
        defer { unlink(path) }
        if let thrown { throw thrown }
        return String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
    }

    /// Steps a session with a fixed (zero) gradient: what matters here is when it checkpoints.
    final class Stepper {
        let session: TrainingSession
        var gradients: [Float]
        init(_ config: RunConfig, dir: URL) throws {
            var o = RunOptions(runDirectory: dir)
            o.printProgress = false
            session = try TrainingSession(config: config, options: o)
            gradients = [Float](repeating: 0, count: session.parameterCount)
            session.begin(workers: 1)
        }
        func step(to last: Int) throws {
            while session.progress.step < last {
                try gradients.withUnsafeMutableBufferPointer { g in
                    guard let base = g.baseAddress else { return }
                    try session.completeStep(
                        gradients: base, statistics: LossStatistics(lossSum: 20, nllSum: 20, tokens: 10),
                        microBatches: 1, workers: 1)
                }
            }
        }
    }

    func latest(_ run: URL) throws -> String {
        try String(decoding: Data(contentsOf: run.appendingPathComponent("checkpoints/latest")), as: UTF8.self)
    }

    func temporaries(_ run: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: run.path + "/checkpoints").filter { $0.hasPrefix(".tmp-") }
    }

    func testReadOnlyCheckpointsDirectoryIsReportedAndRetriedAtTheNextInterval() throws {
        let root = try tmpfs(kilobytes: 4096)
        let run = root.appendingPathComponent("run")
        let s = try Stepper(try Self.config(maxSteps: 6, checkpointEvery: 2, validateEvery: 100), dir: run)
        try s.step(to: 2)
        XCTAssertEqual(try latest(run), "step-00000002\n")
        // A read-only bind mount of checkpoints/ (remounting the whole tmpfs read-only is refused
        // while metrics.jsonl is open for writing).
        let checkpoints = run.path + "/checkpoints"
        XCTAssertNil(try TemporaryFileSystem.command(["--bind", checkpoints, checkpoints]))
        XCTAssertNil(try TemporaryFileSystem.command(["-o", "remount,bind,ro", checkpoints]))
        var mounted = true
        defer { if mounted { _ = try? TemporaryFileSystem.command(["umount", checkpoints]) } }
        let errors = try standardError { try s.step(to: 4) }
        XCTAssertTrue(errors.contains("error: cannot write checkpoint \(checkpoints)/step-00000004: "), errors)
        XCTAssertTrue(errors.contains("Read-only file system"), errors)
        XCTAssertTrue(
            errors.contains(
                "\(checkpoints)/latest still names step-00000002; training continues and the next "
                    + "checkpoint (step 6, or a new best before it) retries"), errors)
        XCTAssertEqual(try latest(run), "step-00000002\n")
        XCTAssertEqual(try CheckpointStore(runDirectory: run.path).list().map(\.step), [2])
        XCTAssertEqual(try CheckpointStore.load(directory: checkpoints + "/step-00000002").step, 2)
        XCTAssertNil(try TemporaryFileSystem.command(["umount", checkpoints]))
        mounted = false
        // Writable again: the step-6 checkpoint (the final one) succeeds and the run ends normally.
        let later = try standardError { try s.step(to: 6) }
        XCTAssertFalse(later.contains("error"), later)
        XCTAssertEqual(try latest(run), "step-00000006\n")
        XCTAssertEqual(try CheckpointStore(runDirectory: run.path).list().map(\.step), [2, 6])
        XCTAssertEqual(try s.session.finish(workers: 1).step, 6)
    }

    /// Fills the file system of `url` up to the last byte with a file `url/filler`.
    func fill(_ url: URL) throws {
        let fd = open(url.path + "/filler", O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let chunk = [UInt8](repeating: 7, count: 4096)
        var total = 0
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                XCTAssertEqual(errno, ENOSPC)
                break
            }
            total += n
        }
        XCTAssertGreaterThan(total, 0)
    }

    func testFullDiskLeavesThePreviousCheckpointAndRetriesOnceSpaceIsFreed() throws {
        let root = try tmpfs(kilobytes: 1024)
        let run = root.appendingPathComponent("run")
        let s = try Stepper(try Self.config(maxSteps: 6, checkpointEvery: 2, validateEvery: 100), dir: run)
        try s.step(to: 2)
        try fill(root)
        let errors = try standardError { try s.step(to: 4) }
        let checkpoints = run.path + "/checkpoints"
        XCTAssertTrue(errors.contains("error: cannot write checkpoint \(checkpoints)/step-00000004: "), errors)
        XCTAssertTrue(errors.contains("No space left on device"), errors)
        XCTAssertTrue(errors.contains("still names step-00000002; training continues"), errors)
        XCTAssertEqual(try latest(run), "step-00000002\n")
        XCTAssertEqual(try temporaries(run), [], "the partial checkpoint is removed")
        XCTAssertEqual(try CheckpointStore(runDirectory: run.path).list().map(\.step), [2])
        XCTAssertEqual(try CheckpointStore.load(directory: checkpoints + "/step-00000002").step, 2)
        try FileManager.default.removeItem(at: root.appendingPathComponent("filler"))
        try s.step(to: 6)
        XCTAssertEqual(try latest(run), "step-00000006\n")
        XCTAssertEqual(try temporaries(run), [])
        XCTAssertEqual(try s.session.finish(workers: 1).step, 6)
        // Whatever lines the full disk dropped, the ones kept are whole.
        for line in try String(decoding: Data(contentsOf: run.appendingPathComponent("metrics.jsonl")), as: UTF8.self)
            .split(separator: "\n")
        {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8)), String(line))
        }
    }

    func testFailedFinalCheckpointFailsTheRunNamingTheLastCheckpoint() throws {
        let root = try tmpfs(kilobytes: 1024)
        let run = root.appendingPathComponent("run")
        let s = try Stepper(try Self.config(maxSteps: 4, checkpointEvery: 2, validateEvery: 100), dir: run)
        try s.step(to: 2)
        try fill(root)
        let errors = try standardError { try s.step(to: 4) }
        let last = "the run's last checkpoint is step 2 at \(run.path)/checkpoints/step-00000002"
        XCTAssertTrue(errors.contains("No space left on device"), errors)
        XCTAssertTrue(errors.contains("this was the run's final checkpoint; " + last), errors)
        XCTAssertTrue(s.session.isFinished)
        _ = try standardError {
            XCTAssertThrowsError(try s.session.finish(workers: 1)) { error in
                let message = "\(error)"
                XCTAssertTrue(
                    message.hasPrefix(
                        "the run ended without its final checkpoint: the checkpoint of step 4 "
                            + "could not be written (cannot write checkpoint "), message)
                XCTAssertTrue(message.hasSuffix("); " + last), message)
            }
        }
        XCTAssertEqual(try latest(run), "step-00000002\n")
    }

    func testLogLinesThatCannotBeWrittenAreDroppedWithOneWarning() throws {
        let root = try tmpfs(kilobytes: 256)
        let log = try RunLog(directory: root.appendingPathComponent("run"))
        try fill(root)
        let errors = try standardError {
            log.logStep(["step": 1, "loss": 2.5])
            log.logStep(["step": 2, "loss": 2.4])
            log.logValidation(["step": 2, "loss": 2.3])
        }
        let metrics = root.appendingPathComponent("run/metrics.jsonl")
        XCTAssertEqual(
            errors.components(
                separatedBy: "warning: cannot append to \(metrics.path): No space left on device; "
                    + "training continues"
            ).count, 2, errors)
        XCTAssertTrue(
            errors.contains("warning: cannot append to \(root.path)/run/valid.jsonl: No space left on device"), errors)
        XCTAssertEqual(try Data(contentsOf: metrics).count, 0)
        try FileManager.default.removeItem(at: root.appendingPathComponent("filler"))
        log.logStep(["step": 3, "loss": 2.2])
        XCTAssertEqual(String(decoding: try Data(contentsOf: metrics), as: UTF8.self), "{\"loss\":2.2,\"step\":3}\n")
    }
}
