import Foundation
import XCTest

/// Real coordinator and worker processes over tcp:// on loopback, each with a deadline.
final class ProcessTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// A started process whose output is collected into a file.
    final class Running {
        let process = Process()
        let log: URL
        init(_ exe: URL, _ args: [String], log: URL) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let out = try FileHandle(forWritingTo: log)
            process.executableURL = exe
            process.arguments = args
            process.currentDirectoryURL = ProcessTests.repository
            process.standardOutput = out
            process.standardError = out
            try process.run()
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        /// Waits for exit; kills and fails the test on timeout.
        func wait(_ seconds: Double, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning {
                process.terminate()
                XCTFail(
                    "\(process.executableURL?.lastPathComponent ?? "?") did not finish in \(seconds) s:\n\(output)",
                    file: file, line: line)
            }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    var dir: URL!
    var port = 0
    var started: [Running] = []

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        port = 20_000 + Int.random(in: 0..<20_000)
    }

    override func tearDown() {
        for r in started where r.process.isRunning { r.kill9() }
        try? FileManager.default.removeItem(at: dir)
    }

    func exe(_ name: String) throws -> URL {
        let u = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: u.path) else {
            throw XCTSkip("\(u.path) not built (run Scripts/test)")
        }
        return u
    }

    func start(_ name: String, _ args: [String]) throws -> Running {
        let r = try Running(try exe(name), args, log: dir.appendingPathComponent("\(name)-\(started.count).log"))
        started.append(r)
        return r
    }

    var endpoint: String { "tcp://127.0.0.1:\(port)" }

    /// The copy config with small checkpoint intervals, written into the test directory.
    func config(checkpointEvery: Int = 200, validateEvery: Int = 100) throws -> String {
        let data = try Data(contentsOf: ProcessTests.repository.appendingPathComponent("configs/copy.json"))
        var o = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var t = try XCTUnwrap(o["training"] as? [String: Any])
        t["checkpoint_every"] = checkpointEvery
        t["validate_every"] = validateEvery
        o["training"] = t
        let url = dir.appendingPathComponent("copy.json")
        try JSONSerialization.data(withJSONObject: o).write(to: url)
        return url.path
    }

    func summary(_ run: URL) throws -> [String: Any] {
        try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json")))
                as? [String: Any])
    }

    func waitForStep(_ step: Int, in run: URL, timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
            if let last = text.split(separator: "\n").last,
                let o = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
                let s = o["step"] as? Int, s >= step
            {
                return
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("step \(step) not reached in \(timeout) s")
    }

    /// SPEC's quickstart with two worker processes: the copy task learns and the summary says so.
    func testCopyWithTwoSpawnedWorkers() throws {
        let run = dir.appendingPathComponent("run")
        let c = try start(
            "coordinator",
            [
                "--config", "configs/copy.json", "--workers", "2", "--spawn-local",
                "--bind", endpoint, "--run-dir", run.path,
            ])
        XCTAssertEqual(c.wait(400), 0, c.output)
        let s = try summary(run)
        XCTAssertEqual(s["workers"] as? Int, 2)
        XCTAssertEqual(s["step"] as? Int, 1000)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(s["sequence_accuracy"] as? Double), 0.99, c.output)
        let line = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(
            separator: "\n"
        ).last
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try XCTUnwrap(line).utf8)) as? [String: Any])
        for key in [
            "compute_seconds", "reduce_seconds", "apply_seconds", "broadcast_seconds", "bytes_sent", "bytes_received",
        ] {
            XCTAssertNotNil(m[key], "metrics.jsonl lacks \(key)")
        }
    }

    func testWorkerWithAnotherConfigIsRefused() throws {
        let c = try start(
            "coordinator",
            [
                "--config", "configs/copy.json", "--workers", "1", "--bind", endpoint,
                "--run-dir", dir.appendingPathComponent("run").path, "--join-timeout", "20",
            ])
        let w = try start(
            "worker", ["--coordinator", endpoint, "--config", "configs/reverse.json", "--give-up-after", "20"])
        XCTAssertEqual(w.wait(30), 1)
        XCTAssertTrue(w.output.contains("refused this worker: config hash differs"), w.output)
        c.kill9()
    }

    /// kill -9 of one of three workers mid-run: the step is re-planned over the survivors, a
    /// restarted worker joins, the run completes with a loss like an uninterrupted run's.
    func testKilledWorkerIsReplacedAndTrainingCompletes() throws {
        let steps = "150"
        let reference = dir.appendingPathComponent("reference")
        let r = try start(
            "coordinator",
            [
                "--config", "configs/copy.json", "--workers", "3", "--spawn-local", "--bind",
                "tcp://127.0.0.1:\(port + 1)", "--run-dir", reference.path, "--max-steps", steps,
            ])
        XCTAssertEqual(r.wait(240), 0, r.output)

        let run = dir.appendingPathComponent("run")
        let c = try start(
            "coordinator",
            [
                "--config", "configs/copy.json", "--workers", "3", "--bind", endpoint,
                "--run-dir", run.path, "--max-steps", steps, "--heartbeat-timeout", "3",
            ])
        let workers = try (0..<3).map { try start("worker", ["--coordinator", endpoint, "--name", "w\($0)"]) }
        waitForStep(30, in: run, timeout: 120)
        workers[1].kill9()
        waitForStep(60, in: run, timeout: 120)
        let replacement = try start("worker", ["--coordinator", endpoint, "--name", "w1-restarted"])
        XCTAssertEqual(c.wait(240), 0, c.output)
        XCTAssertTrue(c.output.contains("worker w1 (rank "), c.output)  // ranks follow join order
        XCTAssertTrue(c.output.contains(") dropped"), c.output)
        XCTAssertTrue(c.output.contains("worker w1-restarted joined"), c.output)
        for w in [workers[0], workers[2], replacement] { XCTAssertEqual(w.wait(30), 0, w.output) }
        let a = try XCTUnwrap(summary(reference)["train_loss"] as? Double),
            b = try XCTUnwrap(summary(run)["train_loss"] as? Double)
        print("train loss uninterrupted \(a), with a killed worker \(b)")
        XCTAssertEqual(b, a, accuracy: 0.05 * a)
    }

    /// How a Slurm job ends (requeue, preemption, scancel): every process gets SIGTERM and `srun`
    /// kills the workers. The coordinator, whose step can then never complete, checkpoints the last
    /// completed step, writes the summary and exits 0 (it used to wait for new workers until
    /// killed), and --resume continues from exactly that step.
    func testStopRequestWithKilledWorkersCheckpointsTheLastCompletedStep() throws {
        let cfg = try config(checkpointEvery: 1000, validateEvery: 1000)
        let run = dir.appendingPathComponent("run")
        let c = try start(
            "coordinator",
            [
                "--config", cfg, "--workers", "2", "--bind", endpoint, "--run-dir", run.path,
                "--max-steps", "400", "--heartbeat-timeout", "2",
            ])
        let workers = try (0..<2).map { try start("worker", ["--coordinator", endpoint, "--name", "w\($0)"]) }
        waitForStep(20, in: run, timeout: 120)
        for w in workers { w.kill9() }
        kill(c.process.processIdentifier, SIGTERM)
        XCTAssertEqual(c.wait(60), 0, c.output)
        let stopped = try XCTUnwrap(c.output.firstMatch(of: /stopped at step (\d+);/).flatMap { Int($0.1) }, c.output)
        XCTAssertGreaterThanOrEqual(stopped, 20)
        XCTAssertLessThan(stopped, 400)
        XCTAssertTrue(c.output.contains("stop requested and its workers are gone; ending at step \(stopped)"), c.output)
        let name = String(format: "step-%08d", stopped)
        XCTAssertEqual(
            try String(contentsOf: run.appendingPathComponent("checkpoints/latest"), encoding: .utf8), name + "\n")
        XCTAssertEqual(try summary(run)["step"] as? Int, stopped)

        let resumed = try start(
            "coordinator",
            [
                "--config", cfg, "--workers", "2", "--spawn-local", "--bind", "tcp://127.0.0.1:\(port + 1)",
                "--run-dir", run.path, "--max-steps", "\(stopped + 10)", "--resume",
            ])
        XCTAssertEqual(resumed.wait(240), 0, resumed.output)
        XCTAssertTrue(
            resumed.output.contains(
                "resumed from \(run.appendingPathComponent("checkpoints").path)/\(name) at step \(stopped)"),
            resumed.output)
        XCTAssertEqual(try summary(run)["step"] as? Int, stopped + 10)
    }

    /// kill -9 of the coordinator: restarted with --resume, the workers (still running) rejoin and
    /// the run completes from the last checkpoint.
    func testKilledCoordinatorResumesAndWorkersRejoin() throws {
        let cfg = try config(checkpointEvery: 20, validateEvery: 1000)
        let run = dir.appendingPathComponent("run")
        let args = ["--config", cfg, "--workers", "2", "--bind", endpoint, "--run-dir", run.path, "--max-steps", "80"]
        let first = try start("coordinator", args)
        let workers = try (0..<2).map {
            try start(
                "worker",
                [
                    "--coordinator", endpoint, "--name", "w\($0)",
                    "--coordinator-timeout", "3", "--give-up-after", "60",
                ])
        }
        waitForStep(45, in: run, timeout: 120)
        first.kill9()
        let latest = try String(contentsOf: run.appendingPathComponent("checkpoints/latest"), encoding: .utf8)
        XCTAssertEqual(latest, "step-00000040\n")
        let second = try start("coordinator", args + ["--resume"])
        XCTAssertEqual(second.wait(240), 0, second.output)
        XCTAssertTrue(second.output.contains("resumed from"), second.output)
        XCTAssertTrue(second.output.contains("steps 41...80"), second.output)
        for w in workers { XCTAssertEqual(w.wait(30), 0, w.output) }
        XCTAssertEqual(try summary(run)["step"] as? Int, 80)
    }
}
