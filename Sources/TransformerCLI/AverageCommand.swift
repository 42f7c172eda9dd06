import ArgumentParser
import Training

/// `transformer average`: the parameter average of checkpoints of one run (fairseq's
/// average_checkpoints), written as a checkpoint that translate and evaluate load like any other.
/// See `CheckpointAveraging` for the arithmetic and what the output holds.
struct AverageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "average",
        abstract: "Average the parameters of checkpoints of one run into a new checkpoint directory.",
        discussion: """
            Give the checkpoints with --checkpoints DIR..., or --last N RUN_DIR for the run's newest N. \
            The output holds model.safetensors, state.json and an optimizer.safetensors without tensors: \
            use it with translate and evaluate; training cannot resume from it.
            """)
    @Option(parsing: .upToNextOption, help: "Checkpoint directories to average (of one run).") var checkpoints:
        [String] = []
    @Option(help: "Average the newest N checkpoints of a run directory (give the run directory as the argument).")
    var last: Int?
    @Argument(help: "Run directory (with --last).") var runDirectory: String?
    @Option(help: "Directory to create for the averaged checkpoint (must not exist).") var output: String

    func run() throws {
        try reportingErrors {
            let directories: [String]
            switch (checkpoints.isEmpty, last, runDirectory) {
            case (false, nil, nil):
                directories = checkpoints
            case (true, let n?, let run?):
                guard n >= 1 else { throw ValidationError("--last must be at least 1") }
                directories = try CheckpointAveraging.lastCheckpoints(n, runDirectory: run)
            default:
                throw ValidationError("give either --checkpoints DIR... or --last N RUN_DIR")
            }
            let written = try CheckpointAveraging.average(directories, output: output)
            printLine("averaged \(directories.count) checkpoint(s): \(directories.joined(separator: " "))")
            printLine("wrote \(written.directory)")
        }
    }
}
