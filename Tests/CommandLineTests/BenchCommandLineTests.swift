import Foundation
import Training
import TransformerModel
import XCTest

/// `transformer bench train / gemm / decode` as a user runs them: their JSON is checked against
/// `StepProducts` and against itself (never against the machine's speed).
extension CommandLineTests {
    private func benchJSON(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String:
        Any]
    {
        let r = try run("transformer", ["bench"] + arguments, timeout: 300, file: file, line: line)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout,
            file: file, line: line)
    }

    private func tinyStep(batch: Int, source: Int, target: Int) throws -> StepProducts {
        let cfg = try RunConfig.load(path: CommandLineTests.repository.appendingPathComponent("configs/tiny.json").path)
        return StepProducts(config: cfg.model, batch: batch, sourceLength: source, targetLength: target)
    }

    func testBenchTrainReportsTheStepsMatrixProductsAndTheGemmPeak() throws {
        let expected = try tinyStep(batch: 2, source: 3, target: 5).totalFLOPs
        let shape = [
            "--config", "tiny", "--steps", "1", "--warmup", "0", "--batch", "2", "--src-len", "3", "--tgt-len", "5",
        ]
        let plain = try benchJSON(["train"] + shape + ["--no-gemm-peak"])
        XCTAssertEqual(try XCTUnwrap(plain["gflops_per_step"] as? Double) * 1e9, Double(expected), accuracy: 0.5)
        XCTAssertNil(plain["fraction_of_gemm_peak"])
        let measured = try benchJSON(["train"] + shape)
        let rate = try XCTUnwrap(measured["gflops_per_second"] as? Double)
        let peak = try XCTUnwrap(measured["gemm_peak_gflops_per_second"] as? Double)
        let seconds = try XCTUnwrap(measured["step_seconds_median"] as? Double)
        XCTAssertEqual(rate, Double(expected) / seconds / 1e9, accuracy: rate * 1e-9)
        XCTAssertGreaterThan(peak, 0)
        XCTAssertEqual(try XCTUnwrap(measured["fraction_of_gemm_peak"] as? Double), rate / peak, accuracy: 1e-12)
    }

    /// Every product of the step is timed: calls x 2mnk over the shapes add up to the step's count.
    func testBenchGemmCoversEveryProductOfTheStep() throws {
        let step = try tinyStep(batch: 2, source: 3, target: 5)
        let json = try benchJSON([
            "gemm", "--config", "tiny", "--batch", "2", "--src-len", "3", "--tgt-len", "5",
            "--threads", "2", "--repeats", "1", "--min-seconds", "0", "--square", "96",
        ])
        XCTAssertEqual(json["square_size"] as? Int, 96)
        let results = try XCTUnwrap(json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["threads"] as? Int }, [2])
        let shapes = try XCTUnwrap(results.first?["shapes"] as? [[String: Any]])
        var total = 0, names = 0
        for s in shapes {
            let m = try XCTUnwrap(s["m"] as? Int), n = try XCTUnwrap(s["n"] as? Int), k = try XCTUnwrap(s["k"] as? Int)
            total += try XCTUnwrap(s["calls_per_step"] as? Int) * 2 * m * n * k
            names += (s["products"] as? [String])?.count ?? 0
            XCTAssertGreaterThan(try XCTUnwrap(s["gflops_per_second"] as? Double), 0)
        }
        XCTAssertEqual(total, step.totalFLOPs)
        XCTAssertEqual(names, step.products.count)
        XCTAssertLessThan(shapes.count, step.products.count)  // equal shapes were timed once
    }

    func testBenchDecodeRunsEveryStepGreedyAndBeam() throws {
        for beam in [1, 3] {
            let json = try benchJSON([
                "decode", "--config", "tiny", "--batch", "2", "--src-len", "5", "--new-tokens", "7",
                "--beam", "\(beam)", "--repeats", "1", "--warmup", "0",
            ])
            XCTAssertEqual(json["decoder"] as? String, beam == 1 ? "greedy" : "beam")
            XCTAssertEqual(json["new_tokens"] as? Int, 7)
            let seconds = try XCTUnwrap(json["decode_seconds_median"] as? Double)
            XCTAssertEqual(
                try XCTUnwrap(json["generated_tokens_per_second"] as? Double), 14 / seconds, accuracy: 1e-6 / seconds)
            XCTAssertEqual(try XCTUnwrap(json["ms_per_step"] as? Double), seconds / 7 * 1000, accuracy: 1e-9)
        }
        let tooLong = try run("transformer", ["bench", "decode", "--config", "tiny", "--new-tokens", "9999"])
        XCTAssertEqual(tooLong.status, 1)
        XCTAssertTrue(tooLong.stderr.contains("max_len"), tooLong.stderr)
    }

    /// The pool's spin comes from TRANSFORMER_POOL_SPIN_US; a value that is not a number of
    /// microseconds in range is reported and the default kept, and the JSON says which spin ran.
    func testBenchReportsThePoolSpinAndWarnsAboutAnInvalidOne() throws {
        let shape = ["decode", "--config", "tiny", "--batch", "1", "--src-len", "3", "--new-tokens", "2"]
        for (value, spin, warns) in [("20", 20, false), ("abc", 50, true), ("-5", 50, true), ("2000000", 50, true)] {
            let r = try run(
                "transformer", ["bench"] + shape + ["--threads", "2", "--repeats", "1", "--warmup", "0"],
                environment: ["TRANSFORMER_POOL_SPIN_US": value])
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(json["pool_spin_us"] as? Int, spin, value)
            XCTAssertEqual(r.stderr.contains("TRANSFORMER_POOL_SPIN_US=\"\(value)\""), warns, r.stderr)
        }
    }
}
