import Foundation
import XCTest

/// `transformer plot` through the real executable: default output paths, bad input.
extension CommandLineTests {
    func testPlotCommandWritesTheSVGAndReportsBadInput() throws {
        let dir = try temporaryDirectory()
        let runDir = dir.appendingPathComponent("run-a")
        try FileManager.default.createDirectory(at: runDir, withIntermediateDirectories: true)
        try Data("{\"step\": 10, \"loss\": 2.5, \"lr\": 0.001, \"tokens_per_second\": 900}\n{\"step\": 20, \"lo\n".utf8)
            .write(to: runDir.appendingPathComponent("metrics.jsonl"))
        let one = try run("transformer", ["plot", runDir.path])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(one.stdout, runDir.path + "/plot.svg\n")
        XCTAssertEqual(one.stderr, "skipped \(runDir.path)/metrics.jsonl line 2: not a JSON object\n")
        let svg = try String(contentsOf: runDir.appendingPathComponent("plot.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("data-run=\"run-a\" data-series=\"train/loss\""), svg)

        let output = dir.appendingPathComponent("both.svg").path
        let two = try run("transformer", ["plot", runDir.path, runDir.path + "/", "--output", output])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(two.stdout, output + "\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: output))

        let missing = try run("transformer", ["plot", dir.path + "/nope"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(
            missing.stderr, "error: \(dir.path)/nope is not a directory (give the --run-dir of a training run)\n")
        let notARun = try run("transformer", ["plot", dir.path])
        XCTAssertEqual(notARun.status, 1)
        XCTAssertTrue(notARun.stderr.contains("metrics.jsonl: missing or unreadable"), notARun.stderr)
        let unwritable = try run("transformer", ["plot", runDir.path, "--output", dir.path + "/no/such/dir/x.svg"])
        XCTAssertEqual(unwritable.status, 1)
        XCTAssertTrue(
            unwritable.stderr.hasSuffix(
                "error: cannot write \(dir.path)/no/such/dir/x.svg: directory \(dir.path)/no/such/dir does not exist\n"),
            unwritable.stderr)
    }
}
