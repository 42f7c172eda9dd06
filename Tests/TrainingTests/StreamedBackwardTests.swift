import Foundation
import TensorCore
import Training
import TransformerModel
import XCTest

/// The pieces that let a worker send gradient buckets during backward: the model's report of what
/// backward has finished, the tree push done range by range, and the replica's report of final
/// node sums. Each must give exactly the bits of the computation without reports.
final class StreamedBackwardTests: XCTestCase {
    static func config(tied: Bool, learnedPositions: Bool = false, checkpointing: Bool = false) throws -> RunConfig {
        let json = """
            {"name": "stream", "model": {"vocab_size": 12, "d_model": 16, "heads": 2, "d_ff": 32, "encoder_layers": 2,
                                         "decoder_layers": 2, "dropout": 0.1, "max_len": 16, "tie_embeddings": \(tied),
                                         "positional": "\(learnedPositions ? "learned" : "sinusoidal")"},
             "training": {"batch_tokens": 48, "accumulation_steps": 8, "max_steps": 2, "warmup_steps": 1,
                          "validate_every": 1000, "valid_size": 4, "log_every": 1,
                          "activation_checkpointing": \(checkpointing)},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    static func replica(_ config: RunConfig) throws -> ReplicaTrainer {
        ReplicaTrainer(config: config, model: ReplicaTrainer.model(for: config), data: try makeTrainingData(config))
    }

    /// Every value backward reports final is the value it ends with; the reports go from the end
    /// of the arena down to 0, a layer at a time (the generator first when it is not tied).
    func testBackwardReportsOnlyFinalValues() throws {
        // Checkpointing recomputes each layer's forward inside backward: it must write no gradient.
        for (tied, learned, checkpointing) in [
            (true, false, false), (false, false, false), (false, true, false), (true, false, true),
        ] {
            let config = try Self.config(tied: tied, learnedPositions: learned, checkpointing: checkpointing)
            let replica = try Self.replica(config)
            let layout = replica.model.arena.layout
            let count = layout.totalCount
            var snapshots: [(from: Int, values: [Float])] = []
            _ = try replica.computeGradientParts(step: 1, microBatches: [3], firstPosition: 0) { node, values, from in
                XCTAssertEqual(node, TreeNode(start: 0, count: 1))
                snapshots.append((from, Array(UnsafeBufferPointer(start: values + from, count: count - from))))
            }
            let final = replica.parts[0].values
            XCTAssertEqual(replica.parts.count, 1)
            let froms = snapshots.map(\.from)
            // Generator (untied), decoder norm, 2 decoder layers, encoder norm, 2 encoder layers, 0.
            XCTAssertEqual(froms.count, tied ? 7 : 8, "tied \(tied)")
            XCTAssertEqual(froms, froms.sorted(by: >), "reports must go down the arena")
            XCTAssertEqual(froms.last, 0)
            XCTAssertEqual(froms.first, tied ? layout.offset("decoder.norm.weight") : layout.offset("generator.weight"))
            XCTAssertEqual(froms.dropLast().last, layout.offset("encoder.layers.0.self_attn.in_proj_weight"))
            for s in snapshots {
                XCTAssertEqual(
                    s.values, Array(UnsafeBufferPointer(start: final + s.from, count: count - s.from)),
                    "gradients at offsets >= \(s.from) changed after they were reported final (tied \(tied))")
            }
            // And the report changes nothing: the same micro-batch without reports has the same bits.
            let plain = try Self.replica(config)
            _ = try plain.computeGradientParts(step: 1, microBatches: [3], firstPosition: 0)
            XCTAssertEqual(
                Array(UnsafeBufferPointer(start: plain.parts[0].values, count: count)),
                Array(UnsafeBufferPointer(start: final, count: count)))
        }
    }

    /// A push done range by range, in any order of ranges, has the bits of the whole push.
    func testRangedPushEqualsPush() {
        let count = 37
        var rng = SystemRandomNumberGenerator()
        let leaves = (0..<7).map { _ in (0..<count).map { _ in Float.random(in: -1...1, using: &rng) } }
        let whole = PairwiseSum(count: count), ranged = PairwiseSum(count: count)
        whole.reset(startingAt: 1)
        ranged.reset(startingAt: 1)
        for leaf in leaves {
            leaf.withUnsafeBufferPointer { whole.push($0.baseAddress!) }
            leaf.withUnsafeBufferPointer { p in
                ranged.beginPush(p.baseAddress!)
                for r in [30..<37, 0..<5, 12..<30, 5..<12] { ranged.finishPush(r) }
            }
            XCTAssertEqual(whole.nodes, ranged.nodes)
            for i in whole.nodes.indices {
                XCTAssertEqual(
                    Array(UnsafeBufferPointer(start: whole.partial(i), count: count)),
                    Array(UnsafeBufferPointer(start: ranged.partial(i), count: count)))
            }
        }
        XCTAssertEqual(
            whole.nodes, [TreeNode(start: 1, count: 1), TreeNode(start: 2, count: 2), TreeNode(start: 4, count: 4)])
    }

    /// Several micro-batches, aligned or not: the node sums (parts) are those of summing each
    /// micro-batch's own gradient in the canonical tree with whole pushes; a node is reported
    /// final only with its final values, every node but the last when the last micro-batch starts.
    func testReportedNodeSumsAreFinalAndEqualTheTree() throws {
        let config = try Self.config(tied: true)
        for (first, indices) in [(0, [0, 1, 2, 3]), (1, [4, 5]), (0, [2, 3, 4]), (3, [5, 6, 7, 0, 1])] {
            let replica = try Self.replica(config)
            let count = replica.model.arena.layout.totalCount
            var snapshots: [(node: TreeNode, from: Int, values: [Float])] = []
            _ = try replica.computeGradientParts(step: 2, microBatches: indices, firstPosition: first) {
                node, values, from in
                snapshots.append((node, from, Array(UnsafeBufferPointer(start: values + from, count: count - from))))
            }
            let nodes = TreeNode.cover(first..<(first + indices.count))
            XCTAssertEqual(replica.parts.map(\.node), nodes)
            // The reference: each micro-batch alone, pushed whole into the tree.
            let reference = try Self.replica(config)
            let tree = PairwiseSum(count: count)
            tree.reset(startingAt: first)
            for index in indices {
                reference.model.arena.zeroGradients()
                let dropout = DropoutContext(
                    seed: config.training.seed, step: 2, microBatch: index, rate: config.model.dropout)
                _ = try reference.accumulate(reference.data.microBatch(index: index), dropout: dropout)
                tree.push(reference.model.arena.gradients.pointer)
            }
            XCTAssertEqual(tree.nodes, nodes)
            func values(_ p: UnsafePointer<Float>, from: Int = 0) -> [Float] {
                Array(UnsafeBufferPointer(start: p + from, count: count - from))
            }
            for (i, part) in replica.parts.enumerated() {
                XCTAssertEqual(
                    values(part.values), values(tree.partial(i)), "node \(part.node) of \(first), \(indices)")
            }
            for s in snapshots {
                let i = try XCTUnwrap(nodes.firstIndex(of: s.node))
                XCTAssertEqual(s.values, values(replica.parts[i].values, from: s.from), "node \(s.node) from \(s.from)")
            }
            // Earlier nodes come once, whole; the last node comes down to 0.
            XCTAssertEqual(snapshots.filter { $0.node != nodes.last }.map(\.node), Array(nodes.dropLast()))
            XCTAssertTrue(snapshots.filter { $0.node != nodes.last }.allSatisfy { $0.from == 0 })
            XCTAssertEqual(snapshots.last?.node, nodes.last)
            XCTAssertEqual(snapshots.last?.from, 0)
            XCTAssertGreaterThan(snapshots.filter { $0.node == nodes.last }.count, 2)
        }
    }
}
