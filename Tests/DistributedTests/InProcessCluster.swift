import Distributed
import Foundation
import TensorCore
import Training
import XCTest

/// Test support: the real Coordinator and Worker actors in this process, over `inproc://` sockets
/// (the `--single-process` path) or `tcp://` on loopback (what separate processes use, with the
/// heartbeats and timeouts that apply to remote workers).
enum InProcessCluster {
    enum Transport { case inproc, tcp }

    /// CLUSTER_TEST_VERBOSE=1 prints the coordinator's and workers' lines (for debugging a test).
    static let verbose = ProcessInfo.processInfo.environment["CLUSTER_TEST_VERBOSE"] != nil

    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase, prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Trains `config` in `dir` with `workers` one-thread workers until the coordinator finishes,
    /// and returns the coordinator (for its final state). `coordinator` and `worker` adjust the
    /// options (the worker's closure gets its index). `beforeWorkers` runs once the coordinator is
    /// listening, before any worker starts (e.g. to let another peer join first); each worker's
    /// task awaits `startWorker(index)` before it starts (e.g. to join in the middle of the run).
    @discardableResult
    static func train(
        _ config: RunConfig, in dir: URL, workers: Int, resume: RunOptions.Resume = .fresh,
        over transport: Transport = .inproc,
        coordinator adjustCoordinator: (inout CoordinatorOptions) -> Void = { _ in },
        worker adjustWorker: @escaping @Sendable (Int, inout WorkerOptions) -> Void = { _, _ in },
        beforeWorkers: (String) async throws -> Void = { _ in },
        startWorker: @escaping @Sendable (Int) async -> Void = { _ in }
    )
        async throws -> Coordinator
    {
        Parallel.threads = 1
        let context: ZMQContext? = transport == .inproc ? try ZMQContext() : nil
        var run = RunOptions(runDirectory: dir)
        run.workers = workers
        run.printProgress = verbose
        run.resume = resume
        var options = CoordinatorOptions(
            bind: transport == .inproc ? "inproc://test-\(UUID().uuidString)" : "tcp://127.0.0.1:*",
            workers: workers)
        adjustCoordinator(&options)
        let coordinator = try Coordinator(config: config, run: run, options: options, context: context)
        let endpoint = coordinator.endpoint
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await coordinator.run() }
            try await beforeWorkers(endpoint)
            for i in 0..<workers {
                group.addTask {
                    await startWorker(i)
                    var o = WorkerOptions(endpoint: endpoint, name: "w\(i)", threads: 1)
                    o.printProgress = verbose
                    adjustWorker(i, &o)
                    try await Worker(options: o, context: context).run()
                }
            }
            try await group.waitForAll()
        }
        return coordinator
    }
}
