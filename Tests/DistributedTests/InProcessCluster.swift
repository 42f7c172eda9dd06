import Foundation
import XCTest
import TensorCore
import Training
import Distributed

/// Test support: the real Coordinator and Worker actors in this process, over inproc:// sockets.
enum InProcessCluster {
    /// A fresh directory removed when `test` ends.
    static func temporaryDirectory(for test: XCTestCase, prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Trains `config` in `dir` with `workers` one-thread workers until the coordinator finishes.
    static func train(_ config: RunConfig, in dir: URL, workers: Int, resume: RunOptions.Resume = .fresh) async throws {
        Parallel.threads = 1
        let context = try ZMQContext()
        let endpoint = "inproc://test-\(UUID().uuidString)"
        var run = RunOptions(runDirectory: dir)
        run.workers = workers; run.printProgress = false; run.resume = resume
        let coordinator = try Coordinator(config: config, run: run, options: CoordinatorOptions(bind: endpoint, workers: workers),
                                          context: context)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await coordinator.run() }
            for i in 0..<workers {
                group.addTask {
                    var o = WorkerOptions(endpoint: endpoint, name: "w\(i)", threads: 1)
                    o.printProgress = false
                    try await Worker(options: o, context: context).run()
                }
            }
            try await group.waitForAll()
        }
    }
}
