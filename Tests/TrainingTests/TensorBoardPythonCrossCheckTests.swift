import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

/// The event files of a real run, killed-and-resumed, read back by the `tensorboard` Python
/// package: every scalar equals metrics.jsonl / valid.jsonl (as Float32, steps exact), each
/// (tag, step) appears once. Runs when the Python found via TRANSFORMER_TEST_PYTHON (else
/// `python3`) can import tensorboard; skipped otherwise.
final class TensorBoardPythonCrossCheckTests: XCTestCase {
    /// Raw events through TensorBoard's own loader (which checks both CRCs of every record and
    /// stops at a bad one), plus what its EventAccumulator serves to the scalar dashboard.
    private static let script = """
        import json, os, struct, sys
        from tensorboard.backend.event_processing import event_file_loader
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.compat.proto import event_pb2
        directory = sys.argv[1]
        # Float32 values as their bit patterns: exact whatever the JSON reader's rounding.
        def bits(value): return struct.unpack("<I", struct.pack("<f", value))[0]
        files = []
        for name in sorted(os.listdir(directory)):
            events = []
            for raw in event_file_loader.RawEventFileLoader(os.path.join(directory, name)).Load():
                e = event_pb2.Event.FromString(raw)
                events.append({"step": e.step, "wall_time": e.wall_time, "file_version": e.file_version,
                               "values": [[v.tag, bits(v.simple_value)] for v in e.summary.value]})
            files.append({"name": name, "events": events})
        acc = EventAccumulator(directory, size_guidance={"scalars": 0})
        acc.Reload()
        scalars = {tag: [[s.step, bits(s.value)] for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
        json.dump({"files": files, "scalars": scalars}, open(sys.argv[2], "w"), allow_nan=False)
        """

    private func read(_ directory: String, scratch: URL) throws -> [String: Any] {
        let script = scratch.appendingPathComponent("read_events.py"),
            out = scratch.appendingPathComponent("events.json")
        try Data(Self.script.utf8).write(to: script)
        XCTAssertEqual(try ReferencePython.run([script.path, directory, out.path]), 0, "python failed")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
    }

    /// The numbers of each line (Int or Double), read with JSONDecoder: on Linux JSONSerialization
    /// misreads numbers that need 16 or 17 digits by up to a few ulps, which once in a while moves
    /// their Float and would fail the comparison with the event files.
    private func jsonLines(_ url: URL) throws -> [[String: Any]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { text in
            try JSONDecoder().decode([String: LoggedJSONValue].self, from: Data(text.utf8)).compactMapValues {
                value -> Any? in
                switch value {
                case .integer(let i): i
                case .number(let d): d
                case .other: nil
                }
            }
        }
    }

    private static func number(_ value: Any?) -> Double? { (value as? Double) ?? (value as? Int).map(Double.init) }
    private static func float(_ bits: Int) -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: bits)) }

    func testResumedRunReadsBackThroughTensorBoard() throws {
        guard (try? ReferencePython.run(["-c", "import tensorboard.backend.event_processing.event_accumulator"])) == 0
        else {
            throw XCTSkip("Python package tensorboard is not importable with \(ReferencePython.path)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tb-python-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: scratch) }

        // The byte-exact record of the pure-Swift test, as TensorBoard reads it.
        let small = scratch.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        try Data(TensorBoardEventTests.smallRecord).write(to: small.appendingPathComponent("events.out.tfevents.1.h"))
        let smallFiles = try XCTUnwrap(read(small.path, scratch: scratch)["files"] as? [[String: Any]])
        let smallEvents = try XCTUnwrap(smallFiles.first?["events"] as? [[String: Any]])
        XCTAssertEqual(smallEvents.count, 1)
        XCTAssertEqual(smallEvents.first?["step"] as? Int, 7)
        XCTAssertEqual(Self.number(smallEvents.first?["wall_time"]), 1.5)
        XCTAssertEqual((smallEvents.first?["values"] as? [[Any]])?.first?.first as? String, "a")
        XCTAssertEqual((smallEvents.first?["values"] as? [[Any]])?.first?.last as? Int, Int(Float(0.5).bitPattern))

        // A run to step 30 that "dies" after checkpointing step 20 (its steps 25 and 30 are
        // logged), resumed from step 20 to 40.
        let run = scratch.appendingPathComponent("run")
        Parallel.threads = 1
        func train(maxSteps: Int, resume: RunOptions.Resume) throws {
            let json = """
                {"name": "tbcopy",
                 "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1, "decoder_layers": 1,
                           "dropout": 0.1, "max_len": 16},
                 "training": {"batch_tokens": 128, "max_steps": \(maxSteps), "warmup_steps": 10, "validate_every": 10,
                              "checkpoint_every": 10, "keep_checkpoints": 5, "valid_size": 16, "log_every": 5},
                 "data": {"task": "copy", "copy_max_len": 6}}
                """
            var options = RunOptions(runDirectory: run)
            options.resume = resume
            options.printProgress = false
            try TrainingRun(config: try RunConfig.parse(data: Data(json.utf8), source: "test"), options: options).run()
        }
        try train(maxSteps: 30, resume: .fresh)
        try train(maxSteps: 40, resume: .from(run.appendingPathComponent("checkpoints/step-00000020").path))

        let metrics = try jsonLines(run.appendingPathComponent("metrics.jsonl"))
        let valid = try jsonLines(run.appendingPathComponent("valid.jsonl"))
        XCTAssertEqual(metrics.compactMap { $0["step"] as? Int }, Array(stride(from: 5, through: 40, by: 5)))
        XCTAssertEqual(valid.compactMap { $0["step"] as? Int }, [10, 20, 30, 40])
        var expected: [String: [Int: Float]] = [:]
        for (lines, keys) in [(metrics, TensorBoardScalars.train), (valid, TensorBoardScalars.valid)] {
            for line in lines {
                let step = try XCTUnwrap(line["step"] as? Int)
                for (key, tag) in keys {
                    if let value = Self.number(line[key]) { expected[tag, default: [:]][step] = Float(value) }
                }
            }
        }
        XCTAssertEqual(
            Set(expected.keys),
            [
                "train/loss", "train/lr", "train/grad_norm", "train/tokens_per_second",
                "train/loss_scale", "valid/loss", "valid/perplexity",
                "valid/sequence_accuracy", "valid/token_accuracy",
            ])

        let result = try read(run.appendingPathComponent("tensorboard").path, scratch: scratch)
        let files = try XCTUnwrap(result["files"] as? [[String: Any]])
        XCTAssertEqual(files.count, 2, "one event file per process")
        var seen: [String: [Int: Float]] = [:]
        var eventCount = 0
        for file in files {
            let events = try XCTUnwrap(file["events"] as? [[String: Any]])
            XCTAssertEqual(events.first?["file_version"] as? String, "brain.Event:2", "\(file["name"] ?? "")")
            eventCount += events.count
            for event in events {
                let step = try XCTUnwrap(event["step"] as? Int)
                for value in try XCTUnwrap(event["values"] as? [[Any]]) {
                    let tag = try XCTUnwrap(value.first as? String)
                    let bits = try XCTUnwrap(value.last as? Int)
                    XCTAssertNil(seen[tag]?[step], "\(tag) at step \(step) is in the event files twice")
                    seen[tag, default: [:]][step] = Self.float(bits)
                }
            }
        }
        // Version records + one event per metrics line + one per validation: nothing lost to a bad CRC.
        XCTAssertEqual(eventCount, 2 + metrics.count + valid.count)
        XCTAssertEqual(seen, expected)
        // What TensorBoard's scalar dashboard is served.
        let scalars = try XCTUnwrap(result["scalars"] as? [String: [[Any]]])
        XCTAssertEqual(Set(scalars.keys), Set(expected.keys))
        for (tag, points) in scalars {
            XCTAssertEqual(points.compactMap { $0.first as? Int }, expected[tag]?.keys.sorted(), tag)
            for point in points {
                let step = try XCTUnwrap(point.first as? Int)
                XCTAssertEqual((point.last as? Int).map(Self.float), expected[tag]?[step], "\(tag) at step \(step)")
            }
        }
    }
}
