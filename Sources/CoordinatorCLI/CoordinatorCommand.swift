import ArgumentParser
import Distributed
import Foundation
import TensorCore
import Training

/// Trains a model: in one process (`--single-process`), or as the coordinator of workers.
@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Train the Transformer: average worker gradients, apply AdamW, broadcast weights, checkpoint.")

    @Option(help: "Config file (JSON), or a name under configs/ such as 'copy'.") var config: String
    @Option(help: "Number of workers (in-process workers with --single-process).") var workers: Int = 1
    @Option(help: "Endpoint the coordinator binds (tcp://HOST:PORT or ipc://PATH).") var bind = "tcp://127.0.0.1:5555"
    @Flag(help: "Run the coordinator and --workers in-process workers in this process (inproc://, no network).")
    var singleProcess = false
    @Flag(help: "Start the worker processes on this host.") var spawnLocal = false
    @Option(help: "Run directory (default runs/<config name>).") var runDir: String?
    @Flag(help: "Resume from the newest valid checkpoint of the run directory.") var resume = false
    @Option(help: "Resume from this checkpoint directory.") var resumeFrom: String?
    @Option(help: "Override training.max_steps.") var maxSteps: Int?
    @Option(help: "Override training.seed.") var seed: UInt64?
    @Option(help: "Compute threads for this process (default: all cores).")
    var threads: Int?
    @Option(help: "Compute threads of each --spawn-local worker (default: cores / workers).") var workerThreads: Int?
    @Option(help: "Seconds to wait for workers to join.") var joinTimeout: Double = 600
    @Option(help: "Seconds after which a silent worker is dropped.") var heartbeatTimeout: Double = 10
    @Option(help: "Seconds a step may take before missing workers are dropped.") var stepTimeout: Double = 600
    @Option(
        help:
            "CURVE secret key of the coordinator (from `transformer keygen`): authenticate and encrypt every connection."
    )
    var curveSecret: String?
    @Option(
        help:
            "With --curve-secret: the workers admitted, a file of Z85 public keys (one per line, # comments) or a directory of *.public files."
    )
    var allowWorkers: String?
    @Flag(help: "Allow binding a non-loopback address without CURVE (anyone who reaches it can join).") var insecure =
        false

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if resume && resumeFrom != nil { throw ValidationError("use either --resume or --resume-from, not both") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let t = workerThreads, t < 1 { throw ValidationError("--worker-threads must be at least 1") }
        for (flag, seconds) in [
            ("--join-timeout", joinTimeout), ("--heartbeat-timeout", heartbeatTimeout), ("--step-timeout", stepTimeout),
        ] where !(seconds.isFinite && seconds > 0) {
            throw ValidationError("\(flag) must be a finite number of seconds above 0 (got \(seconds))")
        }
        if singleProcess && spawnLocal { throw ValidationError("use either --single-process or --spawn-local") }
        if (curveSecret == nil) != (allowWorkers == nil) {
            throw ValidationError("--curve-secret and --allow-workers go together")
        }
        if curveSecret != nil && (singleProcess || spawnLocal) {
            throw ValidationError(
                "--curve-secret is for workers on other hosts; --single-process and --spawn-local workers run on this host and need no keys"
            )
        }
    }

    func run() async throws {
        BLASKernels.restartWithFasterKernelsIfNeeded()
        let spawned = LocalWorkers()
        do {
            var cfg = try RunConfig.load(nameOrPath: config)
            if maxSteps != nil || seed != nil { cfg = try cfg.with(seed: seed, maxSteps: maxSteps) }
            let cores = ProcessInfo.processInfo.activeProcessorCount
            var options = RunOptions(runDirectory: URL(fileURLWithPath: runDir ?? "runs/\(cfg.name)"))
            options.workers = workers
            if resume { options.resume = .latest }
            if let r = resumeFrom { options.resume = .from(r) }
            StopSignal.install()
            let summary: RunSummary
            if singleProcess {
                summary = try await runInProcess(cfg, options: options, threads: threads ?? cores)
            } else {
                // The coordinator reduces, runs AdamW, validates and writes checkpoints between a
                // step's last gradient and the next step's work orders, while every worker is idle
                // (steps are synchronous), so it takes all cores then; otherwise its threads sleep.
                Parallel.threads = threads ?? cores
                var net = CoordinatorOptions(bind: bind, workers: workers)
                net.joinTimeout = joinTimeout
                net.heartbeatTimeout = heartbeatTimeout
                net.stepTimeout = stepTimeout
                if let curveSecret, let allowWorkers {
                    net.curve = try CoordinatorCurve.load(secretFile: curveSecret, allowWorkers: allowWorkers)
                }
                try BindSecurity.check(bind: bind, curve: net.curve != nil, insecure: insecure)
                let coordinator = try Coordinator(config: cfg, run: options, options: net)
                if spawnLocal {
                    let endpoint = coordinator.endpoint.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
                    try spawned.start(
                        count: workers, endpoint: endpoint, threadsEach: workerThreads ?? Swift.max(1, cores / workers))
                }
                summary = try await coordinator.run()
                spawned.stop()
            }
            var line = String(format: "done: step %d, train loss %.4f", summary.step, summary.trainLoss)
            if let v = summary.validation {
                line += String(format: ", valid loss %.4f, token accuracy %.4f", v.loss, v.tokenAccuracy)
                if let s = v.sequenceAccuracy { line += String(format: ", sequence accuracy %.4f", s) }
            }
            printLine(line + String(format: ", %.0f tokens/s, %.1f s", summary.tokensPerSecond, summary.wallSeconds))
            if let note = summary.earlyStopNote { printLine(note) }
        } catch let e as ValidationError {
            throw e
        } catch {
            spawned.stop(graceSeconds: 0)
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The laptop mode: the same Coordinator and Worker actors as a distributed run, talking over
    /// `inproc://` (messages between threads of this process, no network), so there is one
    /// training code path. The workers split `threads` compute threads (threads / workers each)
    /// and compute at the same time, each on its own compute queue.
    private func runInProcess(_ cfg: RunConfig, options: RunOptions, threads: Int) async throws -> RunSummary {
        Parallel.threads = Swift.max(1, threads / workers)
        let context = try ZMQContext()
        let endpoint = "inproc://coordinator-\(ProcessInfo.processInfo.processIdentifier)"
        var net = CoordinatorOptions(bind: endpoint, workers: workers)
        // In one process a worker cannot die or stall apart from the coordinator, and validation
        // (which keeps the coordinator busy) must not look like silence to either side.
        net.joinTimeout = joinTimeout
        net.heartbeatTimeout = .infinity
        net.stepTimeout = stepTimeout
        let coordinator = try Coordinator(config: cfg, run: options, options: net, context: context)
        return try await withThrowingTaskGroup(of: RunSummary?.self) { group in
            group.addTask { try await coordinator.run() }
            for i in 0..<workers {
                var o = WorkerOptions(endpoint: endpoint, name: "local-\(i)", threads: Parallel.threads)
                o.printProgress = false
                o.coordinatorTimeout = .infinity
                group.addTask {
                    // One worker's error must not cancel the others and leave the coordinator
                    // waiting for ranks that are gone: it goes on with the rest, as it would
                    // after losing a worker process.
                    do { try await Worker(options: o, context: context).run() } catch {
                        printError("error: in-process worker \(o.name): \(error)")
                    }
                    return nil
                }
            }
            var summary: RunSummary?
            for try await result in group { if let result { summary = result } }
            guard let summary else {
                throw TrainingError.unsupported("the in-process coordinator ended without a summary")
            }
            return summary
        }
    }
}
