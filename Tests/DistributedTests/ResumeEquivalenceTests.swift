import Distributed
import Foundation
import TensorCore
import Training
import TransformerModel
import XCTest

/// A run stopped after its step-60 checkpoint and resumed to step 120 equals, byte for byte in
/// every tensor (weights and AdamW moments), a run that went to 120 without stopping; also when
/// the resumed run uses another worker count with the same global batch.
final class ResumeEquivalenceTests: XCTestCase {
    static func config(accumulation: Int, steps: Int) throws -> RunConfig {
        let json = """
            {"name": "resume", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                         "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 64, "accumulation_steps": \(accumulation), "max_steps": \(steps), "warmup_steps": 20,
                          "validate_every": 1000, "checkpoint_every": 60, "keep_checkpoints": 10, "valid_size": 8, "log_every": 10},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL { try InProcessCluster.temporaryDirectory(for: self, prefix: "resume") }

    func train(in dir: URL, workers: Int, accumulation: Int, steps: Int, resume: Bool) async throws {
        try await InProcessCluster.train(
            try Self.config(accumulation: accumulation, steps: steps), in: dir, workers: workers,
            resume: resume ? .latest : .fresh)
    }

    /// Every tensor of a checkpoint's model and optimizer files, by file and name.
    func tensors(_ dir: URL, step: Int) throws -> [String: [Float]] {
        var all: [String: [Float]] = [:]
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let path = dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: step))/\(file)")
                .path
            let f = try SafetensorsFile(path: path)
            for t in f.tensors { all[file + ":" + t.name] = try f.floats(named: t.name) }
        }
        return all
    }

    func assertBitwiseEqual(_ a: [String: [Float]], _ b: [String: [Float]], _ what: String) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), what)
        XCTAssertGreaterThan(a.count, 10, what)
        for (name, values) in a {
            guard let other = b[name] else { continue }
            XCTAssertEqual(values.map(\.bitPattern), other.map(\.bitPattern), "\(what): \(name) differs")
        }
    }

    func testStoppedAndResumedRunEqualsUninterruptedRun() async throws {
        let straight = try temporaryDirectory()
        try await train(in: straight, workers: 2, accumulation: 2, steps: 120, resume: false)

        let stopped = try temporaryDirectory()
        try await train(in: stopped, workers: 2, accumulation: 2, steps: 60, resume: false)
        assertBitwiseEqual(try tensors(stopped, step: 60), try tensors(straight, step: 60), "step 60")
        // A copy of the stopped run resumes with 4 workers x 1 micro-batch: same global batch.
        let other = try temporaryDirectory()
        try FileManager.default.removeItem(at: other)
        try FileManager.default.copyItem(at: stopped, to: other)

        try await train(in: stopped, workers: 2, accumulation: 2, steps: 120, resume: true)
        let reference = try tensors(straight, step: 120)
        XCTAssertNotEqual(reference, try tensors(straight, step: 60), "the model must train between 60 and 120")
        assertBitwiseEqual(try tensors(stopped, step: 120), reference, "resumed with 2 workers")

        try await train(in: other, workers: 4, accumulation: 1, steps: 120, resume: true)
        assertBitwiseEqual(try tensors(other, step: 120), reference, "resumed with 4 workers")
    }
}
