import Foundation

/// Appends JSON lines to `metrics.jsonl` and `valid.jsonl`, the same numbers as TensorBoard
/// curves to a new event file in `tensorboard/`, and writes `summary.json` in a run directory.
/// Lines and records are written as they come, so a killed run keeps every logged step.
package final class RunLog {
    package let directory: URL
    private var metrics: FileHandle
    private var valid: FileHandle
    /// nil after a failed write: a full disk stops the curves, not the training (warned once).
    private var tensorBoard: TensorBoardWriter?

    /// Opens (appending) the logs in `directory`, creating it if needed.
    package init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.runDirectory(
                path: directory.path, reason: "cannot create it (\(error.localizedDescription))")
        }
        metrics = try RunLog.openAppending(directory.appendingPathComponent("metrics.jsonl"))
        valid = try RunLog.openAppending(directory.appendingPathComponent("valid.jsonl"))
        do {
            tensorBoard = try TensorBoardWriter(directory: tensorBoardDirectory, wallTime: Date().timeIntervalSince1970)
        } catch {
            throw TrainingError.runDirectory(
                path: directory.path, reason: "cannot start a TensorBoard event file (\(error))")
        }
    }

    private var tensorBoardDirectory: String { directory.appendingPathComponent("tensorboard").path }

    private static func openAppending(_ url: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw TrainingError.runDirectory(
                    path: url.deletingLastPathComponent().path,
                    reason: "cannot create \(url.lastPathComponent) (is it writable?)")
            }
        }
        do {
            let h = try FileHandle(forWritingTo: url)
            try h.seekToEnd()
            return h
        } catch {
            throw TrainingError.runDirectory(
                path: url.deletingLastPathComponent().path,
                reason: "cannot open \(url.lastPathComponent) for writing")
        }
    }

    /// Serialises with sorted keys so files diff cleanly between runs. JSON has no NaN or
    /// infinity: such numbers (the loss and gradient norm of a skipped step) are written as null,
    /// so the line is still written and still valid JSON.
    package static func jsonLine(_ object: [String: Any]) -> Data {
        let clean = object.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            if let f = value as? Float, !f.isFinite { return NSNull() }
            return value
        }
        var data = (try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])) ?? Data("{}".utf8)
        data.append(0x0A)
        return data
    }

    package func logStep(_ object: [String: Any]) {
        append(RunLog.jsonLine(object), to: metrics, "metrics.jsonl", warned: &metricsWarned)
        logTensorBoard(object, TensorBoardScalars.forStep(object))
    }

    package func logValidation(_ object: [String: Any]) {
        append(RunLog.jsonLine(object), to: valid, "valid.jsonl", warned: &validWarned)
        logTensorBoard(object, TensorBoardScalars.forValidation(object))
    }

    private var metricsWarned = false, validWarned = false

    /// Appends one line. A line that cannot be written (disk full) is cut off again, so the file
    /// keeps whole lines, and is left out with one warning per file: logs must not stop training.
    private func append(_ line: Data, to handle: FileHandle, _ name: String, warned: inout Bool) {
        do {
            let offset = try handle.offset()
            do { try handle.write(contentsOf: line) } catch {
                try? handle.truncate(atOffset: offset)
                throw error
            }
        } catch {
            guard !warned else { return }
            warned = true
            printError(
                "warning: cannot append to \(directory.appendingPathComponent(name).path): "
                    + "\(Self.reason(error)); training continues, lines that cannot be written are left out (warned once)"
            )
        }
    }

    /// The system's reason of a Foundation file error ("No space left on device").
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }

    private func logTensorBoard(_ object: [String: Any], _ scalars: [TensorBoardEvent.Scalar]) {
        guard let writer = tensorBoard, let step = object["step"] as? Int, !scalars.isEmpty else { return }
        do {
            try writer.write(
                TensorBoardEvent(wallTime: Date().timeIntervalSince1970, step: Int64(step), scalars: scalars))
        } catch {
            printError("warning: TensorBoard curves stop at step \(step): \(error)")
            tensorBoard = nil
        }
    }

    /// Prepares the logs for a run resumed at `step`: the steps after it were logged by the run
    /// that stopped and will be logged again, so they are removed from `metrics.jsonl`,
    /// `valid.jsonl` and the older TensorBoard event files (each rewritten to a temporary file
    /// and renamed over the old one). Lines without a readable step are kept.
    package func discardEntries(afterStep step: Int) throws {
        metrics = try RunLog.rewrite(metrics, directory.appendingPathComponent("metrics.jsonl"), keepingStepsUpTo: step)
        valid = try RunLog.rewrite(valid, directory.appendingPathComponent("valid.jsonl"), keepingStepsUpTo: step)
        do {
            for note in try TensorBoardWriter.discardEvents(
                afterStep: Int64(step), in: tensorBoardDirectory,
                keeping: tensorBoard?.path)
            {
                printError("tensorboard: \(note)")
            }
        } catch {
            throw TrainingError.runDirectory(
                path: directory.path, reason: "cannot rewrite a TensorBoard event file (\(error))")
        }
    }

    /// Rewrites one JSON-lines log without the lines of later steps and returns a handle
    /// appending to the new file (the old handle still points at the replaced file).
    private static func rewrite(_ handle: FileHandle, _ url: URL, keepingStepsUpTo step: Int) throws -> FileHandle {
        let name = url.lastPathComponent
        guard let data = try? Data(contentsOf: url) else {
            throw TrainingError.runDirectory(path: url.deletingLastPathComponent().path, reason: "cannot read \(name)")
        }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)
        let kept = lines.filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let lineStep = object["step"] as? Int
            else { return true }
            return lineStep <= step
        }
        guard kept.count < lines.count else { return handle }
        var out = Data()
        for line in kept {
            out.append(contentsOf: line)
            out.append(0x0A)
        }
        do { try out.write(to: url, options: .atomic) } catch {
            throw TrainingError.runDirectory(
                path: url.deletingLastPathComponent().path, reason: "cannot rewrite \(name)")
        }
        try? handle.close()
        return try openAppending(url)
    }

    package func writeSummary(_ object: [String: Any]) throws {
        let url = directory.appendingPathComponent("summary.json")
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        do { try data.write(to: url, options: .atomic) } catch {
            throw TrainingError.runDirectory(path: directory.path, reason: "cannot write summary.json")
        }
    }

    deinit {
        try? metrics.close()
        try? valid.close()
        try? tensorBoard?.close()
    }
}

/// Peak resident set size of this process in bytes (VmHWM), or 0 where /proc is unavailable.
package func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return 0
}
