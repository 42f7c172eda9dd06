import Foundation

/// Appends JSON lines to `metrics.jsonl` and `valid.jsonl` and writes `summary.json` in a run
/// directory. Lines are flushed as they are written, so a killed run keeps every logged step.
public final class RunLog {
    public let directory: URL
    private let metrics: FileHandle
    private let valid: FileHandle

    /// Opens (appending) the logs in `directory`, creating it if needed.
    public init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.runDirectory(path: directory.path, reason: "cannot create it (\(error.localizedDescription))")
        }
        metrics = try RunLog.openAppending(directory.appendingPathComponent("metrics.jsonl"))
        valid = try RunLog.openAppending(directory.appendingPathComponent("valid.jsonl"))
    }

    private static func openAppending(_ url: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw TrainingError.runDirectory(path: url.deletingLastPathComponent().path,
                                                 reason: "cannot create \(url.lastPathComponent) (is it writable?)")
            }
        }
        do {
            let h = try FileHandle(forWritingTo: url)
            try h.seekToEnd()
            return h
        } catch {
            throw TrainingError.runDirectory(path: url.deletingLastPathComponent().path,
                                             reason: "cannot open \(url.lastPathComponent) for writing")
        }
    }

    /// Serialises with sorted keys so files diff cleanly between runs. JSON has no NaN or
    /// infinity: such numbers (the loss and gradient norm of a skipped step) are written as null,
    /// so the line is still written and still valid JSON.
    public static func jsonLine(_ object: [String: Any]) -> Data {
        let clean = object.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            if let f = value as? Float, !f.isFinite { return NSNull() }
            return value
        }
        var data = (try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])) ?? Data("{}".utf8)
        data.append(0x0A)
        return data
    }

    public func logStep(_ object: [String: Any]) { metrics.write(RunLog.jsonLine(object)) }
    public func logValidation(_ object: [String: Any]) { valid.write(RunLog.jsonLine(object)) }

    public func writeSummary(_ object: [String: Any]) throws {
        let url = directory.appendingPathComponent("summary.json")
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        do { try data.write(to: url, options: .atomic) } catch {
            throw TrainingError.runDirectory(path: directory.path, reason: "cannot write summary.json")
        }
    }

    deinit {
        try? metrics.close()
        try? valid.close()
    }
}

/// Peak resident set size of this process in bytes (VmHWM), or 0 where /proc is unavailable.
public func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return 0
}
