import ArgumentParser
import Foundation
import Training

/// `transformer plot RUN_DIR... [--output FILE.svg]`: the curves of one or more runs as one SVG.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot loss, learning rate, validation metrics and tokens/s of runs as one SVG.",
        discussion: """
            Reads metrics.jsonl and valid.jsonl of each run directory. Several directories are drawn \
            on the same panels, one colour per run. Lines that cannot be read are skipped and listed \
            on stderr. The SVG goes to RUN_DIR/plot.svg for one run and to ./plot.svg for several, \
            unless --output says otherwise.
            """)
    @Argument(help: "Run directories (the --run-dir of training runs).") var runDirectories: [String]
    @Option(help: "Where to write the SVG.") var output: String?

    func run() throws {
        try reportingErrors {
            guard !runDirectories.isEmpty else { throw ValidationError("give at least one run directory") }
            let names = PlotCommand.legendNames(runDirectories)
            var runs: [RunMetrics] = []
            for (directory, name) in zip(runDirectories, names) {
                let run = try RunMetrics(directory: directory, name: name)
                for line in run.skippedLines { printError("skipped \(line)") }
                runs.append(run)
            }
            let path =
                output
                ?? (runDirectories.count == 1
                    ? (runDirectories[0] as NSString).appendingPathComponent("plot.svg") : "plot.svg")
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw PlotError.unwritableOutput(path: path, reason: "directory \(parent) does not exist")
            }
            do {
                try Data(TrainingPlot.svg(runs: runs).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw PlotError.unwritableOutput(path: path, reason: error.localizedDescription)
            }
            print(path)
        }
    }

    /// The last path component of each directory, or the whole path where two runs would share one.
    static func legendNames(_ directories: [String]) -> [String] {
        let short = directories.map { path -> String in
            let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
            return (trimmed as NSString).lastPathComponent
        }
        return zip(directories, short).map { path, name in short.filter { $0 == name }.count > 1 ? path : name }
    }
}
