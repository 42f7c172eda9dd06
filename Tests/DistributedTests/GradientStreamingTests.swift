import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import TransformerModel
import XCTest

/// Workers send each gradient bucket as soon as backward has finished it, with the real actors
/// over tcp:// on loopback: the buckets leave during backward, last bucket first, the statistics
/// after them, and the weights are bit for bit those of the single-process driver (which sums the
/// same tree without sockets), with Float32 or Float16 gradients, accumulation, non-aligned runs.
final class GradientStreamingTests: XCTestCase {
    /// About 1.3 M parameters: 2 buckets of 1 Mi values, so the last one can leave while the
    /// encoder's backward still runs.
    static func config(accumulation: Int, float16Gradients: Bool, steps: Int = 3) throws -> RunConfig {
        let json = """
            {"name": "stream", "model": {"vocab_size": 12, "d_model": 128, "heads": 4, "d_ff": 512, "encoder_layers": 3,
                                         "decoder_layers": 3, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 48, "accumulation_steps": \(accumulation), "max_steps": \(steps), "warmup_steps": 10,
                          "validate_every": 1000, "checkpoint_every": \(steps), "keep_checkpoints": 10, "valid_size": 4,
                          "log_every": 1, "float16": {"gradients": \(float16Gradients)}},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    /// Collects the workers' send timelines (from their compute threads' actors).
    final class Timelines: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [GradientSendTimeline] = []
        func add(_ t: GradientSendTimeline) {
            lock.lock()
            all.append(t)
            lock.unlock()
        }
        var values: [GradientSendTimeline] {
            lock.lock()
            defer { lock.unlock() }
            return all
        }
    }

    func checkpointFiles(_ dir: URL, step: Int) throws -> [String: Data] {
        let c = dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: step))")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: c.path) where name != "state.json" {
            files[name] = try Data(contentsOf: c.appendingPathComponent(name))
        }
        return files
    }

    func testBucketsLeaveDuringBackwardAndBitsMatchTheSingleProcessDriver() async throws {
        // (workers, accumulation): one node per worker, a single micro-batch each, and 2 x 3
        // (positions 0..<3 and 3..<6: two nodes each, of which only the last streams).
        for (workers, accumulation, half) in [(1, 2, false), (2, 1, false), (2, 3, false), (2, 2, true)] {
            let what = "\(workers) worker(s) x \(accumulation), Float16 gradients \(half)"
            let config = try Self.config(accumulation: accumulation, float16Gradients: half)
            let plan = BucketPlan(elementCount: ParameterLayout(config: config.model).totalCount)
            XCTAssertEqual(plan.bucketCount, 2)
            let timelines = Timelines()
            let distributed = try InProcessCluster.temporaryDirectory(for: self, prefix: "stream")
            try await InProcessCluster.train(
                config, in: distributed, workers: workers, over: .tcp,
                worker: { _, o in o.gradientSendObserver = { timelines.add($0) } })
            let steps = timelines.values
            XCTAssertEqual(steps.count, 3 * workers, what)
            for t in steps {
                let runs = workers == 1 ? 0..<accumulation : (t.rank * accumulation)..<((t.rank + 1) * accumulation)
                let nodes = TreeNode.cover(runs)
                // Each node's buckets once, the last bucket first; the earlier nodes before the last one.
                let expected = nodes.flatMap { node in (0..<plan.bucketCount).reversed().map { (node, $0) } }
                XCTAssertEqual(t.buckets.map(\.node), expected.map(\.0), what)
                XCTAssertEqual(t.buckets.map(\.bucket), expected.map(\.1), what)
                // Every bucket left before the compute returned, and the last one first: bucket 1
                // went while backward still had the encoder to do (`StreamedBackwardTests`
                // proves those values were final then).
                XCTAssertTrue(t.buckets.allSatisfy { $0.seconds <= t.computeEnded }, what)
                XCTAssertLessThan(t.buckets[0].seconds, t.buckets[t.buckets.count - 1].seconds, what)
                XCTAssertGreaterThanOrEqual(t.statisticsSent, t.computeEnded, what)
            }
            if InProcessCluster.verbose {
                // The overlap, for measurements (CLUSTER_TEST_VERBOSE=1): how long before the end of
                // the compute the first bucket left, and what was left to send after it.
                let lead = steps.map { $0.computeEnded - $0.buckets[0].seconds }
                let tail = steps.map { $0.statisticsSent - $0.computeEnded }
                print(
                    "\(what): first bucket \(lead.map { String(format: "%.1f", $0 * 1e3) }) ms before compute end; "
                        + "statistics \(tail.map { String(format: "%.2f", $0 * 1e3) }) ms after")
            }
            Parallel.threads = 1
            let local = try InProcessCluster.temporaryDirectory(for: self, prefix: "stream-local")
            var o = RunOptions(runDirectory: local)
            o.printProgress = false
            o.workers = workers
            try TrainingRun(config: config, options: o).run()
            let a = try checkpointFiles(distributed, step: 3), b = try checkpointFiles(local, step: 3)
            XCTAssertTrue(a.keys.contains("model.safetensors"), what)
            XCTAssertEqual(a.keys.sorted(), b.keys.sorted(), what)
            for (name, data) in a { XCTAssertEqual(data, b[name], "\(name) differs, \(what)") }
        }
    }
}
