import Foundation
import XCTest

/// What a user can type that the executables must answer with a clear error or the right lines,
/// never a trap, a hang, a neighbour's checkpoint or another run's logs.
extension CommandLineTests {
    /// Infinite or NaN timeouts were accepted: `--join-timeout inf` trapped converting it for a
    /// progress message, and a NaN deadline never fired.
    func testTimeoutsMustBeFiniteAndPositive() throws {
        for (flag, value) in [("--join-timeout", "inf"), ("--step-timeout", "nan"), ("--heartbeat-timeout", "0")] {
            let r = try run("coordinator", ["--config", "configs/copy.json", flag, value])
            XCTAssertNotEqual(r.status, 0, "\(flag) \(value)")
            XCTAssertTrue(r.stderr.contains("\(flag) must be a finite number of seconds above 0"), r.stderr)
        }
        let w = try run("worker", ["--coordinator", "tcp://127.0.0.1:1", "--coordinator-timeout", "inf"])
        XCTAssertNotEqual(w.status, 0)
        XCTAssertTrue(w.stderr.contains("--coordinator-timeout must be a finite number"), w.stderr)
        let t = try run("coordinator", ["--config", "configs/copy.json", "--spawn-local", "--worker-threads", "0"])
        XCTAssertNotEqual(t.status, 0)
        XCTAssertTrue(t.stderr.contains("--worker-threads must be at least 1"), t.stderr)
    }

    /// One short copy run, then: a fresh run into its directory moves the earlier run's files to
    /// `earlier-runs/1` unchanged and starts alone (`--resume` continues without moving anything); a mistyped checkpoint path is an error, not the run's latest;
    /// "\r\n" input gives one output line per line; a source longer than max_len is cut with a
    /// warning naming its line; `evaluate` on a file without pairs is an error, not loss 0.
    func testRunDirectoryCheckpointPathsAndInputLines() throws {
        let dir = try temporaryDirectory()
        let runDir = dir.appendingPathComponent("run").path
        let train = ["--single-process", "--config", "configs/copy.json", "--run-dir", runDir, "--threads", "1"]
        let first = try run("coordinator", train + ["--max-steps", "2"], timeout: 120)
        XCTAssertEqual(first.status, 0, first.stderr)
        let metrics = try Data(contentsOf: URL(fileURLWithPath: runDir + "/metrics.jsonl"))

        let again = try run("coordinator", train + ["--max-steps", "1"], timeout: 120)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(
            again.stdout.contains(
                "held an earlier run (checkpoints up to step-00000002): moved its files to "
                    + runDir + "/earlier-runs/1"), again.stdout)
        let fm = FileManager.default
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: runDir + "/earlier-runs/1/metrics.jsonl")), metrics)
        XCTAssertEqual(
            try fm.contentsOfDirectory(atPath: runDir + "/earlier-runs/1/checkpoints").filter { $0.hasPrefix("step-") },
            ["step-00000002"])
        // The new run alone in the directory: its own logs and checkpoints, none of the old step 2.
        XCTAssertEqual(
            try fm.contentsOfDirectory(atPath: runDir + "/checkpoints").filter { $0.hasPrefix("step-") },
            ["step-00000001"])
        let logged = try String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8)
        XCTAssertFalse(logged.contains("\"step\":2"), logged)
        let resumed = try run("coordinator", train + ["--max-steps", "3", "--resume"], timeout: 120)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertFalse(resumed.stdout.contains("earlier run"), resumed.stdout)
        XCTAssertTrue(fm.fileExists(atPath: runDir + "/checkpoints/step-00000003"))

        let typo = try run("transformer", ["translate", "--checkpoint", runDir + "/average-last3"], stdin: "4 5\n")
        XCTAssertEqual(typo.status, 1)
        XCTAssertTrue(typo.stderr.contains("\(runDir)/average-last3 does not exist"), typo.stderr)
        let viaCheckpoints = try run(
            "transformer", ["translate", "--checkpoint", runDir + "/checkpoints"], stdin: "4 5\n")
        XCTAssertEqual(viaCheckpoints.status, 0, viaCheckpoints.stderr)
        // A run directory that is itself called "checkpoints" is still a run directory.
        let named = dir.appendingPathComponent("checkpoints").path
        let namedRun = try run(
            "coordinator",
            [
                "--single-process", "--config", "configs/copy.json", "--run-dir", named, "--threads", "1",
                "--max-steps", "1",
            ],
            timeout: 120)
        XCTAssertEqual(namedRun.status, 0, namedRun.stderr)
        for path in [named, named + "/checkpoints", named + "/"] {
            let t = try run("transformer", ["translate", "--checkpoint", path], stdin: "4 5\n")
            XCTAssertEqual(t.status, 0, "\(path): \(t.stderr)")
        }

        let crlf = try run("transformer", ["translate", "--checkpoint", runDir], stdin: "4 5 6\r\n7 8\r\n9\r\n")
        XCTAssertEqual(crlf.status, 0, crlf.stderr)
        XCTAssertEqual(crlf.stdout.split(separator: "\n", omittingEmptySubsequences: false).count, 4, crlf.stdout)
        let long = Array(repeating: "5", count: 40).joined(separator: " ")  // copy.json: max_len 32
        let cut = try run("transformer", ["translate", "--checkpoint", runDir], stdin: "4 5\n\(long)\n")
        XCTAssertEqual(cut.status, 0, cut.stderr)
        XCTAssertEqual(cut.stdout.split(separator: "\n", omittingEmptySubsequences: false).count, 3, cut.stdout)
        XCTAssertTrue(cut.stderr.contains("1 source line(s) have more than model.max_len 32 tokens"), cut.stderr)
        XCTAssertTrue(cut.stderr.contains("(line 2)"), cut.stderr)

        let empty = dir.appendingPathComponent("empty.tsv")
        try Data().write(to: empty)
        let e = try run("transformer", ["evaluate", "--checkpoint", runDir, "--data", empty.path])
        XCTAssertEqual(e.status, 1, e.stdout)
        XCTAssertTrue(e.stderr.contains("has no source TAB target pair"), e.stderr)
    }

    /// `tokenizer encode` answers every stdin line, also one that is not valid UTF-8 (read with
    /// U+FFFD), so its output still lines up with a parallel file.
    func testTokenizerEncodeKeepsOneLinePerInputLine() throws {
        let dir = try temporaryDirectory()
        let text = dir.appendingPathComponent("text.txt")
        try Data(String(repeating: "the house is small\nthe cat sat\n", count: 20).utf8).write(to: text)
        let tokenizer = dir.appendingPathComponent("tokenizer.json").path
        let trained = try run(
            "transformer", ["tokenizer", "train", "--input", text.path, "--vocab-size", "60", "--output", tokenizer])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        var input = Data("the house\n".utf8)
        input.append(contentsOf: [0x74, 0x68, 0xFF, 0xFE, 0x0A])  // "th" and two bytes that are not UTF-8
        input.append(Data("the cat\n".utf8))
        let r = try run("transformer", ["tokenizer", "encode", "--tokenizer", tokenizer], stdinBytes: input)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 4, r.stdout)  // three lines and the final newline
        XCTAssertFalse(lines[1].isEmpty, "the repaired line is encoded")
        XCTAssertTrue(r.stderr.contains("1 stdin line(s) are not valid UTF-8"), r.stderr)
    }
}
