import Foundation
import XCTest

/// `transformer average` and `transformer translate --nbest` through the real executables.
extension CommandLineTests {
    /// A 6-step copy run with a checkpoint every 2 steps (steps 2, 4, 6); returns the run directory.
    private func trainSmallCopyRun(_ dir: URL) throws -> String {
        let config = """
            {"name": "cli-copy",
             "model": {"vocab_size": 16, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "max_len": 16},
             "training": {"batch_tokens": 256, "max_steps": 6, "warmup_steps": 2, "validate_every": 100,
                          "checkpoint_every": 2, "keep_checkpoints": 5, "valid_size": 16, "log_every": 2},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        let path = dir.appendingPathComponent("config.json")
        try config.write(to: path, atomically: true, encoding: .utf8)
        let runDir = dir.path + "/run"
        let r = try run(
            "coordinator", ["--single-process", "--config", path.path, "--run-dir", runDir, "--threads", "1"],
            timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        return runDir
    }

    func testAverageWritesACheckpointThatTranslatesAndEvaluates() throws {
        let dir = try temporaryDirectory()
        let runDir = try trainSmallCopyRun(dir)
        let output = dir.path + "/average"
        let averaged = try run("transformer", ["average", "--last", "3", runDir, "--output", output])
        XCTAssertEqual(averaged.status, 0, averaged.stderr)
        XCTAssertTrue(averaged.stdout.contains("averaged 3 checkpoint(s)"), averaged.stdout)
        let translated = try run("transformer", ["translate", "--checkpoint", output], stdin: "4 5 6\n7 8\n")
        XCTAssertEqual(translated.status, 0, translated.stderr)
        XCTAssertEqual(
            translated.stdout.split(separator: "\n", omittingEmptySubsequences: false).count, 3, translated.stdout)
        let evaluated = try run("transformer", ["evaluate", "--checkpoint", output])
        XCTAssertEqual(evaluated.status, 0, evaluated.stderr)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8)) as? [String: Any])
        // --checkpoints with the same directories gives the same file.
        let explicit = dir.path + "/explicit"
        let again = try run(
            "transformer",
            ["average", "--checkpoints"] + [2, 4, 6].map { runDir + "/checkpoints/step-0000000\($0)" }
                + ["--output", explicit])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: explicit + "/model.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: output + "/model.safetensors")))
        // Refusals are one clear line and exit 1.
        let twice = try run(
            "transformer",
            [
                "average", "--checkpoints", runDir + "/checkpoints/step-00000002",
                runDir + "/checkpoints/step-00000002", "--output", dir.path + "/x",
            ])
        XCTAssertEqual(twice.status, 1)
        XCTAssertTrue(twice.stderr.contains("is given twice"), twice.stderr)
        let neither = try run("transformer", ["average", "--output", dir.path + "/x"])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.stderr.contains("give either --checkpoints DIR... or --last N RUN_DIR"), neither.stderr)
        let resumed = try run(
            "coordinator",
            [
                "--single-process", "--config", dir.path + "/config.json", "--run-dir",
                dir.path + "/run2", "--resume-from", output, "--max-steps", "8",
            ])
        XCTAssertEqual(resumed.status, 1)
        XCTAssertTrue(resumed.stderr.contains("is an average of checkpoints"), resumed.stderr)
    }

    func testNBestPrintsKRankedHypothesesPerSentence() throws {
        let dir = try temporaryDirectory()
        let runDir = try trainSmallCopyRun(dir)
        let input = "4 5 6\n7 8 9 10\n11\n"
        let plain = try run("transformer", ["translate", "--checkpoint", runDir, "--beam", "4"], stdin: input)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let best = plain.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        XCTAssertEqual(best.count, 3)
        let nbest = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--beam", "4", "--nbest", "3"], stdin: input)
        XCTAssertEqual(nbest.status, 0, nbest.stderr)
        let rows = nbest.stdout.split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
        XCTAssertEqual(rows.count, 9, nbest.stdout)
        XCTAssertTrue(rows.allSatisfy { $0.count == 3 }, nbest.stdout)
        XCTAssertEqual(rows.map { $0[0] }, ["0", "0", "0", "1", "1", "1", "2", "2", "2"])
        for sentence in 0..<3 {
            let own = rows[(sentence * 3)..<(sentence * 3 + 3)]
            let scores = own.compactMap { Double($0[1]) }
            XCTAssertEqual(scores.count, 3)
            XCTAssertEqual(scores, scores.sorted(by: >), "best first: \(own)")
            XCTAssertEqual(Set(own.map { $0[2] }).count, 3, "distinct hypotheses: \(own)")
            XCTAssertEqual(own.first?[2], best[sentence], "the first is the plain beam output")
        }
        // Without --beam, --nbest K searches with width K.
        let implied = try run("transformer", ["translate", "--checkpoint", runDir, "--nbest", "3"], stdin: input)
        let explicit = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--beam", "3", "--nbest", "3"], stdin: input)
        XCTAssertEqual(implied.status, 0, implied.stderr)
        XCTAssertEqual(implied.stdout, explicit.stdout)
        let tooMany = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--beam", "4", "--nbest", "5"], stdin: input)
        XCTAssertNotEqual(tooMany.status, 0)
        XCTAssertTrue(tooMany.stderr.contains("--nbest 5 exceeds --beam 4"), tooMany.stderr)
    }
}
