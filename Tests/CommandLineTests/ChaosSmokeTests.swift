import Foundation
import XCTest

/// `Scripts/chaos` in small: two trials with fixed seeds (a worker kill -9 and restart, a
/// coordinator kill -9 and --resume with the workers left running) on a 40-step copy run, each
/// compared byte for byte with the uninterrupted run. Faults are placed by step, not by time, so
/// a slow machine makes it slower, not different.
extension ProcessTests {
    func testChaosSmokeTwoTrialsAreBitwiseEqual() throws {
        let coordinator = try exe("coordinator")
        guard
            let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw XCTSkip("Scripts/chaos needs python3") }
        let data = try Data(contentsOf: ProcessTests.repository.appendingPathComponent("configs/copy.json"))
        var o = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var t = try XCTUnwrap(o["training"] as? [String: Any])
        t["max_steps"] = 40
        t["checkpoint_every"] = 10
        t["validate_every"] = 20
        t["valid_size"] = 100
        o["training"] = t
        let config = dir.appendingPathComponent("chaos-copy.json")
        try JSONSerialization.data(withJSONObject: o).write(to: config)

        let log = dir.appendingPathComponent("chaos.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let out = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [ProcessTests.repository.appendingPathComponent("Scripts/chaos").path, "2", config.path]
        var env = ProcessInfo.processInfo.environment
        env["CHAOS_SEED"] = "1"  // its worker kill comes early enough for the restart to rejoin
        env["CHAOS_FAULTS"] = "kill-worker,kill-coordinator"
        env["CHAOS_BIN"] = coordinator.deletingLastPathComponent().path
        env["CHAOS_DIR"] = dir.appendingPathComponent("chaos").path
        p.environment = env
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let deadline = Date().addingTimeInterval(300)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        print(text)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertEqual(
            text.split(separator: "\n").last.map(String.init),
            "2 trials, 2 finished, 2 bitwise equal to the uninterrupted run", text)
        XCTAssertTrue(text.contains("kill-worker: worker w") && text.contains(", restarted after"), text)
        XCTAssertTrue(text.contains("kill-coordinator: coordinator killed"), text)
    }
}
