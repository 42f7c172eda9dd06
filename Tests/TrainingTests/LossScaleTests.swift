import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// Dynamic loss scaling: the policy's arithmetic, its `state.json` form, and resume.
final class LossScaleTests: XCTestCase {
    /// Growth every 3 clean steps, hysteresis 2, scale between 1 and 64, starting at 8.
    let small = LossScalePolicy(initialScale: 8, growthInterval: 3, hysteresis: 2, minimumScale: 1, maximumScale: 64)

    func testStaticScaleNeverChanges() {
        var s = LossScaleState(dynamic: false)
        XCTAssertEqual(s.scale, 1)
        XCTAssertEqual(s.update(overflow: true), .unchanged)
        for _ in 0..<5000 { s.update(overflow: false) }
        XCTAssertEqual(s, LossScaleState())
    }

    func testStandardPolicyDoublesAfterExactly2000CleanSteps() {
        var s = LossScaleState(dynamic: true)
        XCTAssertEqual(s.scale, 65536)
        for _ in 0..<1999 { XCTAssertEqual(s.update(overflow: false), .unchanged) }
        XCTAssertEqual(s.scale, 65536)
        XCTAssertEqual(s.cleanSteps, 1999)
        XCTAssertEqual(s.update(overflow: false), .doubled)
        XCTAssertEqual(s.scale, 131072)
        XCTAssertEqual(s.cleanSteps, 0)
    }

    func testEveryOverflowHalvesAndHysteresisDelaysTheNextGrowth() {
        var s = LossScaleState(dynamic: true, policy: small)
        // Fresh: one interval of clean steps doubles.
        XCTAssertEqual(s.update(overflow: false, policy: small), .unchanged)
        XCTAssertEqual(s.update(overflow: false, policy: small), .unchanged)
        XCTAssertEqual(s.update(overflow: false, policy: small), .doubled)
        XCTAssertEqual(s.scale, 16)
        // A single overflow halves at once, and a second one halves again.
        XCTAssertEqual(s.update(overflow: false, policy: small), .unchanged)
        XCTAssertEqual(s.update(overflow: true, policy: small), .halved)
        XCTAssertEqual(s.scale, 8)
        XCTAssertEqual(s.cleanSteps, 0)
        XCTAssertEqual(s.hysteresisLeft, 2)
        XCTAssertEqual(s.update(overflow: true, policy: small), .halved)
        XCTAssertEqual(s.scale, 4)
        // After an overflow it takes 2 x 3 clean steps to double.
        for _ in 0..<5 { XCTAssertEqual(s.update(overflow: false, policy: small), .unchanged) }
        XCTAssertEqual(s.hysteresisLeft, 1)
        XCTAssertEqual(s.update(overflow: false, policy: small), .doubled)
        XCTAssertEqual(s.scale, 8)
        // ...and then one interval per doubling again.
        for _ in 0..<2 { s.update(overflow: false, policy: small) }
        XCTAssertEqual(s.update(overflow: false, policy: small), .doubled)
        XCTAssertEqual(s.scale, 16)
    }

    func testScaleStaysWithinItsBounds() {
        var s = LossScaleState(dynamic: true, policy: small)
        for _ in 0..<10 { s.update(overflow: true, policy: small) }
        XCTAssertEqual(s.scale, 1)
        XCTAssertEqual(s.update(overflow: true, policy: small), .unchanged)
        XCTAssertEqual(s.scale, 1)
        for _ in 0..<100 { s.update(overflow: false, policy: small) }
        XCTAssertEqual(s.scale, 64)
    }

    func testStateJSONRoundTripAndErrors() throws {
        var s = LossScaleState(dynamic: true)
        s.update(overflow: true)
        for _ in 0..<7 { s.update(overflow: false) }
        let o = s.jsonObject
        XCTAssertEqual(o["scale"] as? Double, 32768)
        XCTAssertEqual(o["clean_steps"] as? Int, 7)
        XCTAssertEqual(o["hysteresis_left"] as? Int, 2)
        XCTAssertEqual(o["dynamic"] as? Bool, true)
        // Through JSON text, as in state.json.
        let data = try JSONSerialization.data(withJSONObject: o)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(try LossScaleState(jsonObject: parsed, source: "state.json"), s)
        XCTAssertThrowsError(
            try LossScaleState(
                jsonObject: ["scale": 0.5, "clean_steps": 0, "hysteresis_left": 1],
                source: "x/state.json")
        ) { error in
            XCTAssertEqual("\(error)", "cannot resume: x/state.json: loss_scale.scale 0.5 is not a finite number >= 1")
        }
        XCTAssertThrowsError(try LossScaleState(jsonObject: ["scale": 2], source: "x/state.json")) { error in
            XCTAssertEqual("\(error)", "cannot resume: x/state.json: loss_scale.clean_steps is missing or not a number")
        }
    }

    func testFloat16RoundingHelpers() {
        var scratch: [UInt16] = []
        var values: [Float] = [1, 1.0 / 3, 65504, 65519, 65520, -70000, .nan]
        XCTAssertFalse(Float16Rounding.isFiniteAfterRounding(values, count: values.count))
        XCTAssertTrue(Float16Rounding.isFiniteAfterRounding(values, count: 4))
        XCTAssertFalse(Float16Rounding.isFiniteAfterRounding(values, count: 5))
        values.withUnsafeMutableBufferPointer {
            Float16Rounding.round($0.baseAddress!, count: $0.count, scratch: &scratch)
        }
        XCTAssertEqual(Array(values[0..<6]), [1, 0.333251953125, 65504, 65504, .infinity, -.infinity])
        XCTAssertTrue(values[6].isNaN)
    }

    // MARK: - Runs

    static func config(maxSteps: Int, float16: Bool) throws -> RunConfig {
        let json = """
            {"name": "lscopy",
             "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": \(maxSteps), "warmup_steps": 10, "validate_every": 100,
                          "checkpoint_every": 15, "keep_checkpoints": 5, "valid_size": 16, "log_every": 1,
                          "float16": {"parameters": \(float16), "activations": false, "gradients": \(float16)}},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    @discardableResult
    func run(_ config: RunConfig, dir: URL, resume: RunOptions.Resume = .fresh) throws -> TrainingRun {
        var o = RunOptions(runDirectory: dir)
        o.resume = resume
        o.printProgress = false
        let r = try TrainingRun(config: config, options: o)
        try r.run()
        return r
    }

    func modelBytes(_ dir: URL, step: Int) throws -> Data {
        try Data(
            contentsOf: dir.appendingPathComponent(
                "checkpoints/\(CheckpointStore.directoryName(step: step))/model.safetensors"))
    }

    func savedScale(_ dir: URL, step: Int) throws -> [String: Any] {
        let data = try Data(
            contentsOf: dir.appendingPathComponent(
                "checkpoints/\(CheckpointStore.directoryName(step: step))/state.json"))
        let state = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(state["loss_scale"] as? [String: Any])
    }

    /// The scale and its counters are saved at step 15 and restored: the resumed run continues the
    /// clean-step count (not from 0) and ends bitwise equal to an uninterrupted run.
    func testResumeRestoresTheLossScale() throws {
        Parallel.threads = 1
        let a = try temporaryDirectory(), b = try temporaryDirectory()
        let whole = try run(try Self.config(maxSteps: 30, float16: true), dir: a)
        XCTAssertEqual(whole.progress.skippedSteps, 0, "no overflow expected at 2^16 / token budget")
        try run(try Self.config(maxSteps: 15, float16: true), dir: b)
        XCTAssertEqual(try savedScale(b, step: 15)["clean_steps"] as? Int, 15)
        XCTAssertEqual(try savedScale(b, step: 15)["scale"] as? Double, 65536)
        // Resumed without running a step: the session holds the saved state, not a fresh one.
        var o = RunOptions(runDirectory: b)
        o.resume = .latest
        o.printProgress = false
        let restored = try TrainingRun(config: try Self.config(maxSteps: 30, float16: true), options: o)
        XCTAssertEqual(restored.session.lossScale.cleanSteps, 15)
        XCTAssertEqual(restored.session.lossScale.scale, 65536)
        XCTAssertTrue(restored.session.lossScale.isDynamic)
        let resumed = try run(try Self.config(maxSteps: 30, float16: true), dir: b, resume: .latest)
        XCTAssertEqual(resumed.session.lossScale.cleanSteps, 30)
        XCTAssertEqual(try modelBytes(a, step: 30), try modelBytes(b, step: 30))
        // The Float16 roundings really happen: the Float32 run ends elsewhere.
        let c = try temporaryDirectory()
        try run(try Self.config(maxSteps: 30, float16: false), dir: c)
        XCTAssertNotEqual(try modelBytes(a, step: 30), try modelBytes(c, step: 30))
        XCTAssertEqual(try savedScale(c, step: 30)["dynamic"] as? Bool, false)
        XCTAssertEqual(try savedScale(c, step: 30)["scale"] as? Double, 1)
    }
}
