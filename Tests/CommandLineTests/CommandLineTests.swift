import Foundation
import XCTest

/// Runs the real executables (built next to the test bundle) as separate processes.
final class CommandLineTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a product with a deadline; a hung process is killed and fails the test.
    func run(
        _ product: String, _ arguments: [String], stdin: String? = nil, stdinBytes: Data? = nil,
        environment: [String: String] = [:], timeout: TimeInterval = 60, file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> Result {
        let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let exe = binDir.appendingPathComponent(product)
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw XCTSkip("\(exe.path) is not built (run Scripts/test, which builds every product)")
        }
        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        p.currentDirectoryURL = CommandLineTests.repository
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        if let stdinBytes { input.fileHandleForWriting.write(stdinBytes) }
        try input.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty process cannot block on a full pipe.
        nonisolated(unsafe) var outData = Data(), errData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            p.terminate()
            XCTFail("\(product) \(arguments) did not finish within \(timeout) s", file: file, line: line)
        }
        p.waitUntilExit()
        group.wait()
        return Result(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testBadConfigValueIsReportedByItsPath() throws {
        let dir = try temporaryDirectory()
        let original = try Data(contentsOf: CommandLineTests.repository.appendingPathComponent("configs/copy.json"))
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
        var model = try XCTUnwrap(object["model"] as? [String: Any])
        model["heads"] = 4
        model["d_model"] = 66
        object["model"] = model
        let path = dir.appendingPathComponent("bad.json")
        try JSONSerialization.data(withJSONObject: object).write(to: path)
        let r = try run(
            "coordinator",
            [
                "--single-process", "--config", path.path, "--run-dir", dir.path + "/run",
                "--max-steps", "1",
            ])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("model.heads: 4 does not divide d_model 66"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/run"), "nothing is written for a bad config")
    }

    func testMissingConfigAndUnwritableRunDirectoryAreClearErrors() throws {
        let missing = try run("coordinator", ["--single-process", "--config", "/nonexistent/x.json"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/x.json"), missing.stderr)
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        let unwritable = try run(
            "coordinator",
            [
                "--single-process", "--config", "configs/copy.json", "--run-dir",
                file.path + "/run", "--max-steps", "1",
            ])
        XCTAssertEqual(unwritable.status, 1)
        XCTAssertTrue(unwritable.stderr.contains("run directory"), unwritable.stderr)
        XCTAssertFalse(unwritable.stderr.contains("Fatal error"), unwritable.stderr)
    }

    func testTranslateRejectsTokensOutsideTheVocabulary() throws {
        let dir = try temporaryDirectory()
        let train = try run(
            "coordinator",
            [
                "--single-process", "--config", "configs/copy.json", "--run-dir", dir.path,
                "--max-steps", "2",
            ], timeout: 120)
        XCTAssertEqual(train.status, 0, train.stderr)
        let r = try run("transformer", ["translate", "--checkpoint", dir.path], stdin: "4 5 99\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("'99' is not a token id in [0, 16)"), r.stderr)
    }

    /// The README's quickstart: the copy task reaches sequence accuracy >= 0.99 within its 1000
    /// steps and the checkpoint translates. The wall time is printed, not asserted (it depends on
    /// the machine); the 400 s timeout only catches a hang.
    func testCopyQuickstartLearns() throws {
        let dir = try temporaryDirectory()
        let start = Date()
        let r = try run(
            "coordinator", ["--single-process", "--config", "configs/copy.json", "--run-dir", dir.path],
            timeout: 400)
        let wall = Date().timeIntervalSince(start)
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json")))
                as? [String: Any])
        let accuracy = try XCTUnwrap(summary["sequence_accuracy"] as? Double)
        print("copy quickstart: sequence accuracy \(accuracy), \(wall) s wall")
        XCTAssertGreaterThanOrEqual(accuracy, 0.99)
        XCTAssertEqual(summary["step"] as? Int, 1000)
        XCTAssertEqual(summary["workers"] as? Int, 1)
        let t = try run("transformer", ["translate", "--checkpoint", dir.path], stdin: "4 5 6 7 8\n9 10 11\n")
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertEqual(t.stdout, "4 5 6 7 8\n9 10 11\n")
        // Weight matrices rounded to Float16 and read in place: the trained copy model still copies.
        let half = try run(
            "transformer", ["translate", "--checkpoint", dir.path, "--float16-parameters", "--beam", "2"],
            stdin: "4 5 6 7 8\n9 10 11\n")
        XCTAssertEqual(half.status, 0, half.stderr)
        XCTAssertEqual(half.stdout, "4 5 6 7 8\n9 10 11\n")
        let e = try run("transformer", ["evaluate", "--checkpoint", dir.path])
        XCTAssertEqual(e.status, 0, e.stderr)
        let ev = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(ev["sequence_accuracy"] as? Double), 0.99)
        XCTAssertEqual(ev["float16_parameters"] as? Bool, false)
        // The rounded copy, evaluated: the flag is reported and the copy model still copies.
        let eh = try run("transformer", ["evaluate", "--checkpoint", dir.path, "--float16-parameters"])
        XCTAssertEqual(eh.status, 0, eh.stderr)
        let evh = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(eh.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(evh["float16_parameters"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(evh["sequence_accuracy"] as? Double), 0.99)
    }

    /// Ctrl-C finishes the step, writes a checkpoint there, and --resume continues from it.
    func testInterruptCheckpointsAndResumeContinues() throws {
        let dir = try temporaryDirectory()
        let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let exe = binDir.appendingPathComponent("coordinator")
        guard FileManager.default.isExecutableFile(atPath: exe.path) else { throw XCTSkip("coordinator not built") }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["--single-process", "--config", "configs/copy.json", "--run-dir", dir.path, "--threads", "1"]
        p.currentDirectoryURL = CommandLineTests.repository
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? Data(contentsOf: metrics))?.count ?? 0) == 0 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        p.interrupt()
        let exitDeadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < exitDeadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(p.isRunning, "coordinator did not stop after SIGINT")
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let latest = try String(contentsOf: dir.appendingPathComponent("checkpoints/latest"), encoding: .utf8)
        let stoppedAt = try XCTUnwrap(Int(latest.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertGreaterThanOrEqual(stoppedAt, 10)
        XCTAssertLessThan(stoppedAt, 1000)
        let r = try run(
            "coordinator",
            [
                "--single-process", "--config", "configs/copy.json", "--run-dir", dir.path,
                "--resume", "--max-steps", "\(stoppedAt + 5)",
            ], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("resumed from"), r.stdout)
        XCTAssertTrue(r.stdout.contains("done: step \(stoppedAt + 5)"), r.stdout)
    }
}
