import Foundation
import XCTest

/// The translation task end to end through the real executables: tokenizer training, a short
/// single-process run on a small TSV corpus (with bad lines), then translate and evaluate.
extension CommandLineTests {
    private func writeCorpus(_ dir: URL) throws {
        let english = ["the", "house", "is", "small", "big", "green", "a", "tree", "grows", "slowly"]
        let german = ["das", "Haus", "ist", "klein", "groß", "grün", "ein", "Baum", "wächst", "langsam"]
        func pair(_ i: Int) -> String {
            let idx = (0..<(2 + i % 5)).map { (i * 7 + $0 * 3) % english.count }
            return idx.map { english[$0] }.joined(separator: " ") + "\t" + idx.map { german[$0] }.joined(separator: " ")
        }
        var train = (0..<300).map(pair).joined(separator: "\n") + "\n"
        train += "a line without a tab\n\n"
        var bytes = Data(train.utf8)
        bytes.append(contentsOf: [0xC3, 0x28, 0x09, 0x41, 0x0A])  // invalid UTF-8
        try bytes.write(to: dir.appendingPathComponent("train.tsv"))
        try ((300..<340).map(pair).joined(separator: "\n") + "\n").write(
            to: dir.appendingPathComponent("valid.tsv"),
            atomically: true, encoding: .utf8)
    }

    func testTranslationTaskTrainsTranslatesAndEvaluates() throws {
        let dir = try temporaryDirectory()
        try writeCorpus(dir)
        let tokenizer = dir.appendingPathComponent("tokenizer.json").path
        let trained = try run(
            "transformer",
            [
                "tokenizer", "train", "--input", dir.appendingPathComponent("train.tsv").path,
                "--vocab-size", "120", "--output", tokenizer,
            ])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let config = """
            {"name": "tiny-translation",
             "model": {"vocab_size": 120, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.0, "max_len": 24},
             "training": {"batch_tokens": 256, "max_steps": 40, "warmup_steps": 10, "validate_every": 20,
                          "checkpoint_every": 20, "log_every": 10},
             "data": {"task": "translation", "train": "\(dir.path)/train.tsv", "valid": "\(dir.path)/valid.tsv",
                      "tokenizer": "\(tokenizer)", "bleu_every": 2, "bleu_sample": 16}}
            """
        let configPath = dir.appendingPathComponent("config.json")
        try config.write(to: configPath, atomically: true, encoding: .utf8)
        let runDir = dir.appendingPathComponent("run").path
        let training = try run(
            "coordinator", ["--single-process", "--config", configPath.path, "--run-dir", runDir, "--threads", "1"],
            timeout: 120)
        XCTAssertEqual(training.status, 0, training.stderr)
        // The bad lines are reported at start, by reason.
        XCTAssertTrue(training.stdout.contains("300 pairs of 302 lines"), training.stdout)
        XCTAssertTrue(
            training.stdout.contains("1 invalid UTF-8") && training.stdout.contains("1 not exactly one TAB"),
            training.stdout)
        // BLEU at the 2nd validation (step 40, also the last), not at the 1st.
        let validations = try String(contentsOfFile: runDir + "/valid.jsonl", encoding: .utf8).split(separator: "\n")
            .map {
                try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        XCTAssertEqual(validations.count, 2)
        XCTAssertNil(validations.first?["bleu"])
        let bleu = try XCTUnwrap(validations.last?["bleu"] as? Double)
        XCTAssertTrue((0...100).contains(bleu))
        XCTAssertNotNil(validations.last?["chrf"] as? Double)

        let translated = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--beam", "3"],
            stdin: "the house is small\n\na green tree\n")
        XCTAssertEqual(translated.status, 0, translated.stderr)
        XCTAssertEqual(
            translated.stdout.split(separator: "\n", omittingEmptySubsequences: false).count, 4,
            "one line per input line, the empty one included: \(translated.stdout)")
        // n-best of text: 2 lines per sentence, the first of each is the plain beam-3 translation.
        let nbest = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--beam", "3", "--nbest", "2"],
            stdin: "the house is small\n\na green tree\n")
        XCTAssertEqual(nbest.status, 0, nbest.stderr)
        let fields = nbest.stdout.split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false)
        }
        XCTAssertEqual(fields.map { String($0[0]) }, ["0", "0", "1", "1", "2", "2"], nbest.stdout)
        XCTAssertEqual(
            [0, 2, 4].map { fields[$0].count > 2 ? String(fields[$0][2]) : "?" },
            translated.stdout.split(separator: "\n", omittingEmptySubsequences: false).prefix(3).map(String.init))
        // Translation runs keep the best checkpoint by BLEU (the default): only step 40 computed it.
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json")))
                as? [String: Any])
        XCTAssertEqual(summary["best_metric"] as? String, "bleu")
        XCTAssertEqual(summary["best_step"] as? Int, 40)
        XCTAssertEqual(try String(contentsOfFile: runDir + "/checkpoints/best", encoding: .utf8), "step-00000040\n")

        let evaluated = try run(
            "transformer", ["evaluate", "--checkpoint", runDir, "--data", dir.path + "/valid.tsv", "--beam", "2"])
        XCTAssertEqual(evaluated.status, 0, evaluated.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["pairs"] as? Int, 40)
        XCTAssertNotNil(report["bleu"] as? Double)
        XCTAssertNotNil(report["chrf"] as? Double)
        XCTAssertLessThan(
            try XCTUnwrap(report["loss"] as? Double), 4.0, "40 steps on a 10-word language must have learned something")

        // Another tokenizer than the one the checkpoint was trained with is refused by name.
        let other = dir.appendingPathComponent("other.json").path
        XCTAssertEqual(
            try run(
                "transformer",
                [
                    "tokenizer", "train", "--input", dir.path + "/valid.tsv", "--vocab-size", "60",
                    "--output", other,
                ]
            ).status, 0)
        let refused = try run(
            "transformer", ["translate", "--checkpoint", runDir, "--tokenizer", other], stdin: "the house\n")
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("is not the one this checkpoint was trained with"), refused.stderr)
    }
}
