import Foundation

/// Worker processes started by `coordinator --spawn-local` on this host, each with its own
/// compute-thread budget (and OPENBLAS_NUM_THREADS=1) so the host is never oversubscribed.
package final class LocalWorkers: @unchecked Sendable {
    private var processes: [Process] = []
    private let lock = NSLock()

    package init() {}

    /// Starts `count` `worker` executables found next to the running executable.
    package func start(count: Int, endpoint: String, threadsEach: Int) throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let exe = me.deletingLastPathComponent().appendingPathComponent("worker")
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw CoordinatorError.transport(
                "--spawn-local needs the worker executable at \(exe.path) (swift build -c release)")
        }
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        for i in 0..<count {
            let p = Process()
            p.executableURL = exe
            p.arguments = ["--coordinator", endpoint, "--threads", String(threadsEach), "--name", "local-\(i)"]
            p.environment = env
            try p.run()
            lock.withLock { processes.append(p) }
        }
    }

    /// Terminates any worker still running (normally they exit on the coordinator's shutdown).
    package func stop(graceSeconds: Double = 3) {
        let all = lock.withLock { processes }
        let deadline = Date().addingTimeInterval(graceSeconds)
        while all.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for p in all where p.isRunning { p.terminate() }
    }
}
