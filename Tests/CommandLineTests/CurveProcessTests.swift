import Foundation
import XCTest

/// CURVE with the real executables over tcp:// on loopback: keygen, the bind rule, admitted and
/// refused workers.
final class CurveProcessTests: XCTestCase {
    var dir: URL!
    var port = 0
    var started: [ProcessTests.Running] = []

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("curve-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        port = 20_000 + Int.random(in: 0..<20_000)
    }

    override func tearDown() {
        for r in started where r.process.isRunning { r.kill9() }
        try? FileManager.default.removeItem(at: dir)
    }

    func start(_ name: String, _ args: [String]) throws -> ProcessTests.Running {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            name)
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw XCTSkip("\(exe.path) not built (run Scripts/test)")
        }
        let r = try ProcessTests.Running(exe, args, log: dir.appendingPathComponent("\(name)-\(started.count).log"))
        started.append(r)
        return r
    }

    /// `transformer keygen --output DIR/NAME`, which must succeed.
    func keygen(_ name: String) throws -> (public: String, secret: String) {
        let base = dir.appendingPathComponent("keys/\(name)").path
        let k = try start("transformer", ["keygen", "--output", base])
        XCTAssertEqual(k.wait(60), 0, k.output)
        return (base + ".public", base + ".secret")
    }

    /// The copy config, short, with a checkpoint at its last step (to compare final weights).
    func config(steps: Int) throws -> String {
        let data = try Data(contentsOf: ProcessTests.repository.appendingPathComponent("configs/copy.json"))
        var o = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var t = try XCTUnwrap(o["training"] as? [String: Any])
        t["max_steps"] = steps
        t["checkpoint_every"] = steps
        t["validate_every"] = 100_000
        o["training"] = t
        let url = dir.appendingPathComponent("copy.json")
        try JSONSerialization.data(withJSONObject: o).write(to: url)
        return url.path
    }

    func testKeygenWritesAnOwnerOnlySecretAndRefusesToOverwrite() throws {
        let (publicPath, secretPath) = try keygen("coordinator")
        let publicText = try String(contentsOfFile: publicPath, encoding: .utf8)
        let secretText = try String(contentsOfFile: secretPath, encoding: .utf8)
        XCTAssertEqual(publicText.count, 41)
        XCTAssertEqual(secretText.count, 41)
        XCTAssertTrue(publicText.hasSuffix("\n"))
        XCTAssertNotEqual(publicText, secretText)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int, 0o600)
        let again = try start(
            "transformer", ["keygen", "--output", dir.appendingPathComponent("keys/coordinator").path])
        XCTAssertEqual(again.wait(60), 1, again.output)
        XCTAssertTrue(again.output.contains("already exists; refusing to overwrite"), again.output)
        XCTAssertEqual(try String(contentsOfFile: publicPath, encoding: .utf8), publicText)
        XCTAssertEqual(try String(contentsOfFile: secretPath, encoding: .utf8), secretText)
    }

    func testNonLoopbackBindNeedsCurveOrInsecure() throws {
        let cfg = try config(steps: 5)
        for bind in ["tcp://0.0.0.0:\(port)", "tcp://*:\(port)"] {
            let c = try start(
                "coordinator",
                ["--config", cfg, "--bind", bind, "--run-dir", dir.appendingPathComponent("refused").path])
            XCTAssertEqual(c.wait(60), 1, c.output)
            XCTAssertTrue(c.output.contains("refusing to bind \(bind) without CURVE"), c.output)
            XCTAssertTrue(c.output.contains("--insecure"), c.output)
        }
        let c = try start(
            "coordinator",
            [
                "--config", cfg, "--bind", "tcp://0.0.0.0:\(port)", "--insecure",
                "--run-dir", dir.appendingPathComponent("insecure").path, "--join-timeout", "60",
            ])
        let deadline = Date().addingTimeInterval(60)
        while !c.output.contains("coordinator listening on") && c.process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue(c.output.contains("coordinator listening on tcp://0.0.0.0:\(port)"), c.output)
        c.kill9()
    }

    /// Two admitted workers train to the end; meanwhile a worker with an unknown key and one with
    /// the wrong coordinator key fail with their messages, and the final weights are bit for bit
    /// those of the same run without CURVE and without the intruders.
    func testAdmittedWorkersTrainAndOthersAreRefused() throws {
        let steps = 30
        let cfg = try config(steps: steps)
        let coordinator = try keygen("coordinator"), w0 = try keygen("w0"), w1 = try keygen("w1")
        let stranger = try keygen("stranger"), impostor = try keygen("impostor")
        let allowed = dir.appendingPathComponent("allowed.txt")
        let keyOf = { (path: String) in try String(contentsOfFile: path, encoding: .utf8) }
        try "# the cluster's workers\n\(try keyOf(w0.public))\(try keyOf(w1.public))".write(
            to: allowed, atomically: true, encoding: .utf8)
        let endpoint = "tcp://127.0.0.1:\(port)"

        let run = dir.appendingPathComponent("run")
        let c = try start(
            "coordinator",
            [
                "--config", cfg, "--workers", "2", "--bind", endpoint, "--run-dir", run.path,
                "--curve-secret", coordinator.secret, "--allow-workers", allowed.path, "--join-timeout", "120",
            ])
        // The intruders first, so they knock while the coordinator waits for workers.
        let refused = try start(
            "worker",
            [
                "--coordinator", endpoint, "--name", "stranger", "--give-up-after", "60",
                "--curve-secret", stranger.secret, "--coordinator-public", coordinator.public,
            ])
        let wrongKey = try start(
            "worker",
            [
                "--coordinator", endpoint, "--name", "w0-wrong-key", "--give-up-after", "60",
                "--curve-secret", w0.secret, "--coordinator-public", impostor.public,
            ])
        XCTAssertEqual(refused.wait(90), 1, refused.output)
        XCTAssertTrue(
            refused.output.contains(
                "the coordinator refused this worker's CURVE key \(try keyOf(stranger.public).dropLast())"),
            refused.output)
        XCTAssertEqual(wrongKey.wait(90), 1, wrongKey.output)
        XCTAssertTrue(
            wrongKey.output.contains("CURVE handshake with the coordinator at \(endpoint) failed"), wrongKey.output)
        XCTAssertTrue(wrongKey.output.contains("is --coordinator-public the coordinator's key?"), wrongKey.output)
        let workers = try [w0, w1].enumerated().map { i, keys in
            try start(
                "worker",
                [
                    "--coordinator", endpoint, "--name", "w\(i)",
                    "--curve-secret", keys.secret, "--coordinator-public", coordinator.public,
                ])
        }
        XCTAssertEqual(c.wait(300), 0, c.output)
        for w in workers { XCTAssertEqual(w.wait(30), 0, w.output) }
        let strangerKey = try keyOf(stranger.public).dropLast()
        XCTAssertEqual(c.output.components(separatedBy: "CURVE public key \(strangerKey)").count - 1, 1, c.output)
        XCTAssertTrue(c.output.contains("refused a worker at 127.0.0.1 with CURVE public key \(strangerKey)"), c.output)
        XCTAssertTrue(c.output.contains("a peer failed the CURVE handshake: its HELLO cannot be decrypted"), c.output)
        XCTAssertTrue(c.output.contains("worker w0 joined") && c.output.contains("worker w1 joined"), c.output)
        XCTAssertFalse(c.output.contains("stranger joined") || c.output.contains("w0-wrong-key joined"), c.output)

        let reference = dir.appendingPathComponent("reference")
        let r = try start(
            "coordinator",
            [
                "--config", cfg, "--workers", "2", "--bind", "tcp://127.0.0.1:\(port + 1)",
                "--run-dir", reference.path,
            ])
        let plain = try (0..<2).map {
            try start("worker", ["--coordinator", "tcp://127.0.0.1:\(port + 1)", "--name", "p\($0)"])
        }
        XCTAssertEqual(r.wait(300), 0, r.output)
        for w in plain { XCTAssertEqual(w.wait(30), 0, w.output) }
        let weights = { (run: URL) in
            try Data(
                contentsOf: run.appendingPathComponent(String(format: "checkpoints/step-%08d/model.safetensors", steps))
            )
        }
        XCTAssertEqual(try weights(run), try weights(reference), "CURVE (with intruders) changed the trained weights")
    }
}
