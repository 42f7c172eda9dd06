import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One worker as the coordinator sees it, for `status.json` and the status line.
package struct WorkerStatus: Sendable {
    package var rank: Int
    package var name: String
    package var threads: Int
    /// Seconds from the step's work orders to this worker's last gradient of the step.
    package var lastStepSeconds: Double?
    /// Seconds since the coordinator's socket thread last received anything from it.
    package var secondsSinceHeard: Double?

    package init(rank: Int, name: String, threads: Int, lastStepSeconds: Double?, secondsSinceHeard: Double?) {
        self.rank = rank
        self.name = name
        self.threads = threads
        self.lastStepSeconds = lastStepSeconds
        self.secondsSinceHeard = secondsSinceHeard
    }
}

/// `RUN_DIR/status.json`, rewritten atomically after every step (a reader never sees half a file),
/// and, when standard output is a terminal, one status line updated in place. Logs and CI (not a
/// terminal) get only the plain progress lines, as before.
final class RunStatus {
    private let url: URL
    private let live: Bool
    private var sessionStart = Date()
    private var stepsAtStart = 0
    private(set) var lineShown = false

    init(directory: URL, printProgress: Bool) {
        url = directory.appendingPathComponent("status.json")
        live = printProgress && isatty(STDOUT_FILENO) == 1
    }

    /// Starts the clock the ETA is measured by (steps of this session only: a resumed run's
    /// earlier steps ran at another time, maybe on other machines).
    func begin(step: Int) {
        sessionStart = Date()
        stepsAtStart = step
    }

    func update(
        step: Int, maxSteps: Int, loss: Double, learningRate: Double, tokensPerSecond: Double,
        workers: [WorkerStatus], lastValidation: [String: Any]?
    ) {
        let seconds = Date().timeIntervalSince(sessionStart)
        let done = step - stepsAtStart
        let eta: Double? = done > 0 ? seconds / Double(done) * Double(Swift.max(0, maxSteps - step)) : nil
        var o: [String: Any] = [
            "step": step, "max_steps": maxSteps, "percent": 100 * Double(step) / Double(Swift.max(1, maxSteps)),
            "loss": loss, "lr": learningRate, "tokens_per_second": tokensPerSecond,
            "updated": ISO8601DateFormatter().string(from: Date()),
        ]
        o["eta_seconds"] = eta ?? NSNull()
        o["last_validation"] = lastValidation ?? NSNull()
        o["workers"] = workers.map { w -> [String: Any] in
            [
                "rank": w.rank, "name": w.name, "threads": w.threads,
                "last_step_seconds": w.lastStepSeconds ?? NSNull(),
                "seconds_since_heard": w.secondsSinceHeard ?? NSNull(),
            ]
        }
        // A status file that cannot be written must not stop the run; the logs still have it all.
        try? RunLog.jsonLine(o).write(to: url, options: .atomic)
        guard live else { return }
        var line = String(
            format: "step %d/%d (%.1f%%) | ETA %@ | loss %.4f | lr %.2e | %.0f tok/s | %d worker(s)",
            step, maxSteps, 100 * Double(step) / Double(Swift.max(1, maxSteps)), Self.duration(eta),
            loss, learningRate, tokensPerSecond, workers.count)
        if let slowest = workers.compactMap(\.lastStepSeconds).max() {
            line += String(format: " | slowest %.2f s", slowest)
        }
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
        lineShown = true
    }

    /// Clears the status line before a plain line is printed (it is redrawn after the next step).
    func clearLine() {
        guard lineShown else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
        lineShown = false
    }

    /// Ends the status line where it stands (the final state stays on screen), before other
    /// processes' lines (workers leaving) can land behind it.
    func closeLine() {
        guard lineShown else { return }
        FileHandle.standardOutput.write(Data("\n".utf8))
        lineShown = false
    }

    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "--" }
        let s = Int(seconds.rounded())
        return s >= 3600
            ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}
