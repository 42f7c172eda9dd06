import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

/// `CheckpointAveraging`: the element-wise mean, the output checkpoint, and every refusal.
final class CheckpointAveragingTests: XCTestCase {
    static func config(seed: Int = 1, dModel: Int = 32) throws -> RunConfig {
        let json = """
            {"name": "avgcopy",
             "model": {"vocab_size": 12, "d_model": \(dModel), "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                       "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 128, "max_steps": 3, "warmup_steps": 2, "validate_every": 100, "seed": \(seed),
                          "checkpoint_every": 1, "keep_checkpoints": 5, "valid_size": 8, "log_every": 5},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("avg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A 3-step run with a checkpoint after every step; returns the checkpoint directories.
    func train(_ config: RunConfig, in dir: URL) throws -> [String] {
        Parallel.threads = 1
        var o = RunOptions(runDirectory: dir)
        o.printProgress = false
        try TrainingRun(config: config, options: o).run()
        return (1...3).map { dir.path + "/checkpoints/" + CheckpointStore.directoryName(step: $0) }
    }

    func tensors(_ path: String) throws -> [(name: String, values: [Float])] {
        let f = try SafetensorsFile(path: path)
        return try f.tensors.map { ($0.name, try f.floats(named: $0.name)) }
    }

    func assertRefused(
        _ body: @autoclosure () throws -> Any, _ expected: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(String(describing: error), expected, file: file, line: line)
        }
    }

    func testAverageOfTwoAndThreeIsTheElementwiseMean() throws {
        let dir = try temporaryDirectory()
        let sources = try train(try Self.config(), in: dir)
        for chosen in [Array(sources.prefix(2)), sources] {
            let output = dir.path + "/average-\(chosen.count)"
            let written = try CheckpointAveraging.average(chosen, output: output)
            XCTAssertEqual(written.directory, output)
            let inputs = try chosen.map { try tensors($0 + "/model.safetensors") }
            let averaged = try tensors(output + "/model.safetensors")
            XCTAssertEqual(averaged.map(\.name), inputs[0].map(\.name), "same tensors, same order")
            var changed = 0
            for (t, tensor) in averaged.enumerated() {
                for i in tensor.values.indices {
                    let sum = inputs.reduce(0.0) { $0 + Double($1[t].values[i]) }
                    let expected = Float(sum / Double(chosen.count))
                    XCTAssertEqual(tensor.values[i].bitPattern, expected.bitPattern, "\(tensor.name)[\(i)]")
                    if tensor.values[i] != inputs[0][t].values[i] { changed += 1 }
                }
            }
            XCTAssertGreaterThan(changed, 1000, "the sources differ, so the mean differs from the first")
            // A checkpoint like any other: it loads, with the sources' config; no optimizer tensors.
            let loaded = try CheckpointModel(path: output)
            XCTAssertEqual(loaded.config.configHash, try Self.config().configHash)
            XCTAssertEqual(loaded.tokenizerHash, "")
            XCTAssertEqual(try SafetensorsFile(path: output + "/optimizer.safetensors").tensors.count, 0)
            let state = try CheckpointStore.load(directory: output).stateObject()
            XCTAssertEqual(state["step"] as? Int, chosen.count)
            let listed = try XCTUnwrap(state[CheckpointAveraging.sourcesKey] as? [[String: Any]])
            XCTAssertEqual(listed.compactMap { $0["directory"] as? String }, chosen)
        }
        // Three Float32 values sum exactly in Float64 here, so the order does not matter.
        try CheckpointAveraging.average(sources.reversed(), output: dir.path + "/reversed")
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: dir.path + "/reversed/model.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: dir.path + "/average-3/model.safetensors")))
        XCTAssertEqual(try CheckpointAveraging.lastCheckpoints(2, runDirectory: dir.path), Array(sources.suffix(2)))
    }

    func testRefusals() throws {
        let dir = try temporaryDirectory(), other = try temporaryDirectory(), wider = try temporaryDirectory()
        let sources = try train(try Self.config(), in: dir)
        let otherSeed = try train(try Self.config(seed: 2), in: other)
        let otherShape = try train(try Self.config(dModel: 16), in: wider)
        let out = dir.path + "/out"
        assertRefused(try CheckpointAveraging.average([], output: out), "no checkpoints to average")
        assertRefused(
            try CheckpointAveraging.average([sources[0], sources[0]], output: out),
            "checkpoint \(sources[0]) is given twice")
        assertRefused(
            try CheckpointAveraging.average([sources[0], otherSeed[1]], output: out),
            "checkpoints \(sources[0]) and \(otherSeed[1]) are not of one run: config hash "
                + "\(try Self.config().configHash) vs \(try Self.config(seed: 2).configHash); average checkpoints of one run only"
        )
        assertRefused(
            try CheckpointAveraging.average([sources[0], otherShape[1]], output: out),
            "checkpoints \(sources[0]) and \(otherShape[1]) are not of one run: the model shapes differ "
                + "(\(try Self.config().model) vs \(try Self.config(dModel: 16).model)); average checkpoints of one run only"
        )
        assertRefused(
            try CheckpointAveraging.average(sources, output: dir.path + "/checkpoints/step-00000009"),
            "output \(dir.path)/checkpoints/step-00000009: the name step-00000009 is reserved for training "
                + "checkpoints and pointers; choose another (e.g. RUN/average-last5)")
        assertRefused(
            try CheckpointAveraging.lastCheckpoints(4, runDirectory: dir.path),
            "cannot average the last 4 checkpoints of \(dir.path): it has 3")
        // Another tokenizer hash in one of them.
        try CheckpointStore(runDirectory: other.path).rewriteState(step: 3) { $0["tokenizer_hash"] = "abc" }
        assertRefused(
            try CheckpointAveraging.average([otherSeed[1], otherSeed[2]], output: out),
            "checkpoints \(otherSeed[1]) and \(otherSeed[2]) are not of one run: tokenizer hash \"\" vs \"abc\"; "
                + "average checkpoints of one run only")
        // A damaged source is caught by its CRC before anything is written.
        let damaged = URL(fileURLWithPath: sources[1] + "/model.safetensors")
        var bytes = try Data(contentsOf: damaged)
        bytes[bytes.count - 5] ^= 0x40
        try bytes.write(to: damaged)
        XCTAssertThrowsError(try CheckpointAveraging.average(sources, output: out)) { error in
            guard case .corrupt(let directory, .checksumMismatch(let file, _, _))? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(directory, sources[1])
            XCTAssertEqual(file, "model.safetensors")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // An existing output is never overwritten.
        try CheckpointAveraging.average([sources[0], sources[2]], output: out)
        assertRefused(
            try CheckpointAveraging.average([sources[0], sources[2]], output: out),
            "cannot write checkpoint \(out): it already exists (choose another directory or remove it)")
        // Training cannot resume from an average.
        var o = RunOptions(runDirectory: try temporaryDirectory())
        o.printProgress = false
        o.resume = .from(out)
        assertRefused(
            try TrainingRun(config: try Self.config(), options: o),
            "cannot resume: \(out) is an average of checkpoints (made by `transformer average`) and holds no "
                + "optimizer moments or data position; use it with translate or evaluate, and resume from one of "
                + "the checkpoints it averages")
    }
}
