import Foundation
import Training
import XCTest

final class CheckpointStoreTests: XCTestCase {
    private var run = ""
    private var store: CheckpointStore { CheckpointStore(runDirectory: run) }
    private var checkpoints: String { run + "/checkpoints" }

    override func setUpWithError() throws {
        run = NSTemporaryDirectory() + "checkpoint-tests-" + UUID().uuidString + "/runs/copy"
    }

    override func tearDownWithError() throws {
        let root = run.components(separatedBy: "/runs/copy")[0]
        _ = try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        try? FileManager.default.removeItem(atPath: root)
    }

    // MARK: Writing

    func testWriteCreatesTheDocumentedLayout() throws {
        let state = #"{"step": 200, "rng": 18446744073709551615, "lr": 6.99e-4}"#
        let written = try write(step: 200, fill: 1, state: state)
        let directory = checkpoints + "/step-00000200"
        XCTAssertEqual(written.directory, directory)
        XCTAssertEqual(try names(in: directory), ["model.safetensors", "optimizer.safetensors", "state.json"])
        XCTAssertEqual(try names(in: checkpoints), ["latest", "step-00000200"])
        XCTAssertEqual(try String(contentsOfFile: checkpoints + "/latest", encoding: .utf8), "step-00000200\n")

        let model = try bytes(directory + "/model.safetensors")
        let optimizer = try bytes(directory + "/optimizer.safetensors")
        XCTAssertEqual(written.modelChecksum, CRC32.checksum(model))
        XCTAssertEqual(written.optimizerChecksum, CRC32.checksum(optimizer))
        // The caller's text is kept verbatim (the 64-bit integer and the number formatting), the
        // store's fields follow it.
        let stateText = try String(contentsOfFile: directory + "/state.json", encoding: .utf8)
        let callerPart = #"{"step": 200, "rng": 18446744073709551615, "lr": 6.99e-4"#
        XCTAssertEqual(
            stateText,
            callerPart + ",\n  \"checksums\": {\"model.safetensors\": \"\(CRC32.hex(CRC32.checksum(model)))\", "
                + "\"optimizer.safetensors\": \"\(CRC32.hex(CRC32.checksum(optimizer)))\", "
                + "\"state\": \"\(CRC32.hex(CRC32.checksum(Array(callerPart.utf8))))\"},\n"
                + "  \"checksum_algorithm\": \"crc32\",\n  \"format\": 1\n}\n")

        let loaded = try CheckpointStore.load(directory: directory)
        XCTAssertEqual(loaded.step, 200)
        XCTAssertEqual(loaded.state, Data(stateText.utf8))
        XCTAssertEqual(try loaded.model.floats(named: "embedding.weight"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(loaded.model["embedding.weight"]?.shape, [2, 3])
        XCTAssertEqual(try loaded.optimizer.floats(named: "exp_avg.embedding.weight"), [-1, -2, -3, -4, -5, -6])
        XCTAssertEqual(loaded.model.metadata, ["format": "pt"])
        XCTAssertEqual(try loaded.stateObject()["lr"] as? Double, 6.99e-4)
    }

    func testDictionaryStateAndReservedKeys() throws {
        _ = try write(step: 5, fill: 1, stateObject: ["step": 5, "cursor": ["epoch": 1]])
        let loaded = try CheckpointStore.load(directory: checkpoints + "/step-00000005")
        XCTAssertEqual((try loaded.stateObject()["cursor"] as? [String: Int]), ["epoch": 1])
        XCTAssertEqual(
            try writeError(step: 6, state: #"{"format": 2}"#),
            .invalidState("the key \"format\" is reserved for the checkpoint store"))
        XCTAssertEqual(try writeError(step: 6, state: "[1]"), .invalidState("state is not a JSON object"))
        XCTAssertEqual(
            try writeError(step: 6, state: #"{"step": 7}"#),
            .invalidState("\"step\" in the state is 7, but the checkpoint is for step 6"))
        XCTAssertEqual(
            try writeError(step: 6, state: "{}", keep: 0), .invalidArgument("keep must be at least 1, got 0"))
        XCTAssertEqual(try store.list().map(\.step), [5])
    }

    func testEmptyStateObjectRoundTrips() throws {
        _ = try write(step: 1, fill: 1, state: "{ }\n")
        let text = try String(contentsOfFile: checkpoints + "/step-00000001/state.json", encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("{\n  \"checksums\""), text)
        XCTAssertEqual(try CheckpointStore.load(directory: checkpoints + "/step-00000001").step, 1)
    }

    func testKeepDeletesTheOldest() throws {
        for step in [100, 200, 300] { _ = try write(step: step, fill: Float(step), keep: 2) }
        let written = try write(step: 400, fill: 4, keep: 2)
        XCTAssertEqual(written.removed, [checkpoints + "/step-00000200"])
        XCTAssertEqual(written.warnings, [])
        XCTAssertEqual(
            try store.list(),
            [
                CheckpointListing(step: 300, directory: checkpoints + "/step-00000300"),
                CheckpointListing(step: 400, directory: checkpoints + "/step-00000400"),
            ])
        XCTAssertEqual(try names(in: checkpoints), ["latest", "step-00000300", "step-00000400"])
    }

    /// After resuming from an older checkpoint, the new one is kept and replaces an old one of
    /// the same step; checkpoints of later steps are left alone.
    func testRewritingAfterResumeKeepsTheNewCheckpoint() throws {
        for step in [100, 200, 300] { _ = try write(step: step, fill: Float(step), keep: 2) }
        _ = try write(step: 200, fill: 7, keep: 1)
        XCTAssertEqual(try store.list().map(\.step), [200, 300])
        XCTAssertEqual(
            try CheckpointStore.load(directory: checkpoints + "/step-00000200").model.floats(named: "embedding.weight"),
            [7, 8, 9, 10, 11, 12])
        let search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 200)
        XCTAssertEqual(try names(in: checkpoints).filter { $0.hasPrefix(".tmp") }, [])
    }

    func testInvalidRecordLeavesNothingBehind() throws {
        _ = try write(step: 100, fill: 1)
        let values: [Float] = [1, 2, 3]
        let error = values.withUnsafeBytes { bytes -> CheckpointError? in
            do throws(CheckpointError) {
                try store.write(
                    step: 200, model: [TensorRecord(name: "w", shape: [4], dtype: .f32, bytes: bytes)],
                    optimizer: [], state: Data("{}".utf8), keep: 3)
                return nil
            } catch {
                return error
            }
        }
        XCTAssertEqual(
            error,
            .cannotWrite(
                path: checkpoints + "/step-00000200",
                reason: "safetensors file \(checkpoints)/.tmp-step-00000200-\(getpid())/model.safetensors: "
                    + "cannot write tensor \"w\": shape [4] of F32 needs 16 bytes, got 12"))
        XCTAssertEqual(try names(in: checkpoints), ["latest", "step-00000100"])
        XCTAssertEqual(try String(contentsOfFile: checkpoints + "/latest", encoding: .utf8), "step-00000100\n")
    }

    func testUnwritableRunDirectoryIsAnError() throws {
        // A path through a regular file fails even for root, which ignores permission bits.
        let root = run.components(separatedBy: "/runs/copy")[0]
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/file", contents: Data()))
        run = root + "/file/run"
        XCTAssertEqual(
            try writeError(step: 1, state: "{}"),
            .cannotWrite(
                path: root + "/file/run/checkpoints/step-00000001",
                reason: "cannot create directory \(root)/file: Not a directory"))
        run = root + "/runs/copy"
        guard getuid() != 0 else { return }
        try FileManager.default.createDirectory(atPath: root + "/locked", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: root + "/locked")
        defer { _ = try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root + "/locked") }
        run = root + "/locked/run"
        XCTAssertEqual(
            try writeError(step: 1, state: "{}"),
            .cannotWrite(
                path: root + "/locked/run/checkpoints/step-00000001",
                reason: "cannot create directory \(root)/locked/run: Permission denied"))
        run = root + "/runs/copy"
    }

    // MARK: Loading and falling back

    func testFreshRunHasNoCheckpoint() throws {
        let search = try store.latestValid()
        XCTAssertNil(search.checkpoint)
        XCTAssertEqual(search.skipped, [])
        XCTAssertEqual(try store.list(), [])
    }

    func testCorruptedByteIsDetectedAndResumeFallsBack() throws {
        _ = try write(step: 100, fill: 1)
        let newest = try write(step: 200, fill: 2)
        let directory = checkpoints + "/step-00000200"
        var model = try bytes(directory + "/model.safetensors")
        model[model.count - 3] ^= 0x10
        try Data(model).write(to: URL(fileURLWithPath: directory + "/model.safetensors"))
        let expected = CheckpointError.corrupt(
            directory: directory,
            .checksumMismatch(
                file: "model.safetensors", expected: CRC32.hex(newest.modelChecksum),
                actual: CRC32.hex(CRC32.checksum(model))))
        XCTAssertEqual(loadError(directory), expected)
        XCTAssertEqual(
            expected.description,
            "checkpoint \(directory) is corrupt: model.safetensors checksum mismatch "
                + "(expected \(CRC32.hex(newest.modelChecksum)), got \(CRC32.hex(CRC32.checksum(model))))")

        let search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 100)
        XCTAssertEqual(search.checkpoint?.directory, checkpoints + "/step-00000100")
        XCTAssertEqual(search.skipped, [expected])
    }

    func testTruncatedOptimizerAndEditedStateAreDetected() throws {
        _ = try write(step: 100, fill: 1, state: #"{"step": 100, "cursor": 17}"#)
        let directory = checkpoints + "/step-00000100"
        let optimizer = try bytes(directory + "/optimizer.safetensors")
        try Data(optimizer.dropLast(8)).write(to: URL(fileURLWithPath: directory + "/optimizer.safetensors"))
        guard case .corrupt(directory, .checksumMismatch(file: "optimizer.safetensors", _, _))? = loadError(directory)
        else {
            return XCTFail("truncated optimizer accepted")
        }
        try Data(optimizer).write(to: URL(fileURLWithPath: directory + "/optimizer.safetensors"))
        XCTAssertNil(loadError(directory))

        let state = try String(contentsOfFile: directory + "/state.json", encoding: .utf8)
        try state.replacingOccurrences(of: "\"cursor\": 17", with: "\"cursor\": 18")
            .write(toFile: directory + "/state.json", atomically: false, encoding: .utf8)
        guard case .corrupt(directory, .checksumMismatch(file: "state.json", _, _))? = loadError(directory) else {
            return XCTFail("edited state accepted")
        }
        try String(state.prefix(30)).write(toFile: directory + "/state.json", atomically: false, encoding: .utf8)
        XCTAssertEqual(
            loadError(directory), .corrupt(directory: directory, .invalidState("not valid JSON (truncated or damaged)"))
        )
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        try state.write(toFile: directory + "/state.json", atomically: false, encoding: .utf8)
        XCTAssertEqual(loadError(directory), .corrupt(directory: directory, .missingFile("model.safetensors")))
        XCTAssertEqual(loadError(checkpoints + "/step-00000999"), .notFound(directory: checkpoints + "/step-00000999"))
    }

    func testStepInDirectoryNameMustMatchState() throws {
        _ = try write(step: 200, fill: 1)
        try FileManager.default.copyItem(atPath: checkpoints + "/step-00000200", toPath: checkpoints + "/step-00000300")
        XCTAssertEqual(
            loadError(checkpoints + "/step-00000300"),
            .corrupt(directory: checkpoints + "/step-00000300", .stepMismatch(directoryStep: 300, stateStep: 200)))
        // A copy under any other name takes its step from state.json.
        try FileManager.default.copyItem(atPath: checkpoints + "/step-00000200", toPath: run + "/saved")
        XCTAssertEqual(try CheckpointStore.load(directory: run + "/saved/").step, 200)
    }

    func testLeftoverTemporaryDirectoryIsIgnoredThenRemoved() throws {
        _ = try write(step: 100, fill: 1)
        // Int32.max is above any pid_max, so this "writer" is certainly gone.
        let leftover = checkpoints + "/.tmp-step-00000200-2147483647"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        XCTAssertTrue(
            FileManager.default.createFile(atPath: leftover + "/model.safetensors", contents: Data([1, 2, 3])))
        let search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 100)
        XCTAssertEqual(search.skipped, [])
        XCTAssertEqual(try store.list().map(\.step), [100])
        _ = try write(step: 200, fill: 2)
        XCTAssertEqual(try names(in: checkpoints), ["latest", "step-00000100", "step-00000200"])
    }

    func testMissingOrBrokenLatestPointerFallsBackToNewest() throws {
        _ = try write(step: 100, fill: 1)
        _ = try write(step: 200, fill: 2)
        try FileManager.default.removeItem(atPath: checkpoints + "/latest")
        var search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 200)
        XCTAssertEqual(search.skipped, [.invalidLatestPointer(path: checkpoints + "/latest", reason: "missing")])

        try "../../etc\n".write(toFile: checkpoints + "/latest", atomically: false, encoding: .utf8)
        search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 200)
        XCTAssertEqual(
            search.skipped,
            [
                .invalidLatestPointer(
                    path: checkpoints + "/latest",
                    reason: "does not hold a step-NNNNNNNN directory name")
            ])

        try "step-00000100\n".write(toFile: checkpoints + "/latest", atomically: false, encoding: .utf8)
        search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 100)
        XCTAssertEqual(search.skipped, [])

        try FileManager.default.removeItem(atPath: checkpoints + "/step-00000100")
        search = try store.latestValid()
        XCTAssertEqual(search.checkpoint?.step, 200)
        XCTAssertEqual(search.skipped, [.notFound(directory: checkpoints + "/step-00000100")])
    }

    func testDirectoryNames() {
        XCTAssertEqual(CheckpointStore.directoryName(step: 200), "step-00000200")
        XCTAssertEqual(CheckpointStore.step(fromDirectoryName: "step-00000200"), 200)
        XCTAssertNil(CheckpointStore.step(fromDirectoryName: "step-200"))
        XCTAssertNil(CheckpointStore.step(fromDirectoryName: "step-0000020x"))
        XCTAssertNil(CheckpointStore.step(fromDirectoryName: ".tmp-step-00000200-12"))
    }

    // MARK: Helpers

    /// A checkpoint whose model holds `fill ... fill+5` and whose optimizer holds the negatives.
    @discardableResult
    private func write(
        step: Int, fill: Float, state: String? = nil, stateObject: [String: Any]? = nil,
        keep: Int = 3
    ) throws -> WrittenCheckpoint {
        let model = (0..<6).map { fill + Float($0) }
        let moments = model.map { -$0 }
        return try model.withUnsafeBufferPointer { m in
            try moments.withUnsafeBufferPointer { o in
                guard let mBase = m.baseAddress, let oBase = o.baseAddress else {
                    throw CheckpointError.invalidArgument("empty")
                }
                let modelRecords = [TensorRecord(name: "embedding.weight", shape: [2, 3], float32: mBase)]
                let optimizerRecords = [TensorRecord(name: "exp_avg.embedding.weight", shape: [2, 3], float32: oBase)]
                if let stateObject {
                    return try store.write(
                        step: step, model: modelRecords, optimizer: optimizerRecords, state: stateObject, keep: keep)
                }
                return try store.write(
                    step: step, model: modelRecords, optimizer: optimizerRecords,
                    state: Data((state ?? "{\"step\": \(step)}").utf8), keep: keep)
            }
        }
    }

    private func writeError(step: Int, state: String, keep: Int = 3) throws -> CheckpointError? {
        do {
            try write(step: step, fill: 0, state: state, keep: keep)
            return nil
        } catch let error as CheckpointError {
            return error
        }
    }

    private func loadError(_ directory: String) -> CheckpointError? {
        do {
            _ = try CheckpointStore.load(directory: directory)
            return nil
        } catch {
            return error
        }
    }

    private func names(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
