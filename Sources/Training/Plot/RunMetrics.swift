import Foundation

/// Why a run directory cannot be plotted.
package enum PlotError: Error, CustomStringConvertible, Equatable {
    case missingRunDirectory(String)
    case noMetrics(path: String, reason: String)
    case unwritableOutput(path: String, reason: String)

    package var description: String {
        switch self {
        case .missingRunDirectory(let p): return "\(p) is not a directory (give the --run-dir of a training run)"
        case let .noMetrics(path, reason): return "\(path): \(reason)"
        case let .unwritableOutput(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// The logged numbers of one run directory (`metrics.jsonl`, `valid.jsonl`), by step.
package struct RunMetrics: Equatable {
    /// Shown in the legend.
    package var name: String
    /// One entry per logged step, ascending, each the numeric entries of that line (null and
    /// non-numeric values left out).
    package var train: [(step: Int, values: [String: Double])]
    package var valid: [(step: Int, values: [String: Double])]
    /// Lines that could not be read ("FILE line N: why"), for the user.
    package var skippedLines: [String]

    package static func == (a: RunMetrics, b: RunMetrics) -> Bool {
        a.name == b.name && a.skippedLines == b.skippedLines
            && a.train.map(\.step) == b.train.map(\.step) && a.train.map(\.values) == b.train.map(\.values)
            && a.valid.map(\.step) == b.valid.map(\.step) && a.valid.map(\.values) == b.valid.map(\.values)
    }

    /// The points of one key: (step, value) with a finite value, ascending steps.
    package func series(_ key: String, validation: Bool) -> [(step: Int, value: Double)] {
        (validation ? valid : train).compactMap { entry in entry.values[key].map { (entry.step, $0) } }
    }

    /// Reads a run directory. A missing directory or a `metrics.jsonl` without a single readable
    /// line is an error; unreadable lines are skipped and listed; `valid.jsonl` is optional.
    package init(directory: String, name: String) throws(PlotError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .missingRunDirectory(directory)
        }
        self.name = name
        skippedLines = []
        let metricsPath = (directory as NSString).appendingPathComponent("metrics.jsonl")
        guard let metricsData = FileManager.default.contents(atPath: metricsPath) else {
            throw .noMetrics(path: metricsPath, reason: "missing or unreadable (is \(directory) a run directory?)")
        }
        train = Self.parse(metricsData, path: metricsPath, skipped: &skippedLines)
        guard !train.isEmpty else { throw .noMetrics(path: metricsPath, reason: "no logged step yet") }
        let validPath = (directory as NSString).appendingPathComponent("valid.jsonl")
        var skipped = skippedLines
        valid =
            FileManager.default.contents(atPath: validPath).map { Self.parse($0, path: validPath, skipped: &skipped) }
            ?? []
        skippedLines = skipped
    }

    package init(
        name: String, train: [(step: Int, values: [String: Double])],
        valid: [(step: Int, values: [String: Double])]
    ) {
        self.name = name
        self.train = train
        self.valid = valid
        skippedLines = []
    }

    /// JSON lines with an integer `step`; a step logged twice (by a run resumed before
    /// `metrics.jsonl` was deduplicated on resume) keeps its last line. Read with `JSONDecoder`:
    /// on Linux, `JSONSerialization` misreads numbers of 16-17 significant digits by a few ulps,
    /// and a plotted point must be the logged value exactly.
    private static func parse(_ data: Data, path: String, skipped: inout [String]) -> [(
        step: Int, values: [String: Double]
    )] {
        let decoder = JSONDecoder()
        var byStep: [Int: [String: Double]] = [:]
        for (index, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let object = try? decoder.decode([String: LoggedJSONValue].self, from: Data(line)) else {
                skipped.append("\(path) line \(index + 1): not a JSON object")
                continue
            }
            guard case .integer(let step) = object["step"] else {
                skipped.append("\(path) line \(index + 1): no integer \"step\"")
                continue
            }
            var values: [String: Double] = [:]
            for (key, value) in object {
                switch value {
                case .integer(let integer): values[key] = Double(integer)
                case .number(let number) where number.isFinite: values[key] = number
                default: break
                }
            }
            byStep[step] = values
        }
        return byStep.keys.sorted().map { ($0, byStep[$0] ?? [:]) }
    }
}
