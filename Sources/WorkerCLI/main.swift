import ArgumentParser
import Training

/// A data-parallel worker: holds a model replica and computes gradients for the coordinator.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker",
                                                    abstract: "Join a coordinator and compute gradients on a data shard.")
    @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var coordinator: String
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "Name shown by the coordinator.") var name: String?

    func run() throws {
        printError("worker: distributed training is not available yet (use `coordinator --single-process`)")
        throw ExitCode(2)
    }
}

WorkerCommand.main()
