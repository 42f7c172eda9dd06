import ArgumentParser
import Distributed
import Foundation
import TensorCore
import Training

/// A data-parallel worker: holds a model replica and computes gradients for the coordinator.
@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join a coordinator and compute gradients on a data shard.")
    @Option(help: "Coordinator endpoint, e.g. tcp://HOST:5555.") var coordinator: String
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "Name shown by the coordinator (default: host-pid).") var name: String?
    @Option(
        help:
            "This worker's config; the coordinator refuses it unless it is the same (default: take the coordinator's).")
    var config: String?
    @Option(help: "Seconds of coordinator silence before reconnecting.") var coordinatorTimeout: Double = 20
    @Option(help: "Seconds to keep trying to (re)join before giving up.") var giveUpAfter: Double = 120
    @Option(help: ArgumentHelp("Test hook: send an infinite gradient at this step.", visibility: .hidden))
    var injectNonFiniteAtStep: Int?
    @Option(help: "CURVE secret key of this worker (from `transformer keygen`); needs --coordinator-public.")
    var curveSecret: String?
    @Option(help: "The coordinator's CURVE public key file (its NAME.public).") var coordinatorPublic: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        for (flag, seconds) in [("--coordinator-timeout", coordinatorTimeout), ("--give-up-after", giveUpAfter)]
        where !(seconds.isFinite && seconds > 0) {
            throw ValidationError("\(flag) must be a finite number of seconds above 0 (got \(seconds))")
        }
        if (curveSecret == nil) != (coordinatorPublic == nil) {
            throw ValidationError("--curve-secret and --coordinator-public go together")
        }
    }

    func run() async throws {
        BLASKernels.restartWithFasterKernelsIfNeeded()
        do {
            Parallel.threads = threads
            let host = ProcessInfo.processInfo.hostName
            var options = WorkerOptions(
                endpoint: coordinator, name: name ?? "\(host)-\(ProcessInfo.processInfo.processIdentifier)",
                threads: threads, config: try config.map { try RunConfig.load(nameOrPath: $0) })
            options.coordinatorTimeout = coordinatorTimeout
            options.giveUpAfter = giveUpAfter
            options.injectNonFiniteAtStep = injectNonFiniteAtStep
            if let curveSecret, let coordinatorPublic {
                options.curve = try WorkerCurve.load(secretFile: curveSecret, coordinatorPublic: coordinatorPublic)
            }
            try await Worker(options: options).run()
        } catch {
            printError("worker: \(error)")
            throw ExitCode(1)
        }
    }
}
