import Distributed
import Foundation
import TensorCore
import Training
import XCTest

/// A peer that joins as a worker and then sends gradient buckets that do not fit the plan: the
/// coordinator reads none of it, refuses and drops the peer, re-plans the step over the honest
/// workers, and ends with the weights of the same run without that peer, bit for bit.
final class HostilePeerTests: XCTestCase {
    static func config() throws -> RunConfig {
        let json = """
            {"name": "hostile", "model": {"vocab_size": 12, "d_model": 32, "heads": 2, "d_ff": 64, "encoder_layers": 1,
                                          "decoder_layers": 1, "dropout": 0.1, "max_len": 16},
             "training": {"batch_tokens": 96, "accumulation_steps": 2, "max_steps": 6, "warmup_steps": 10,
                          "validate_every": 1000, "checkpoint_every": 6, "valid_size": 8, "log_every": 1},
             "data": {"task": "copy", "copy_max_len": 6}}
            """
        return try RunConfig.parse(data: Data(json.utf8), source: "test")
    }

    /// What the hostile peer puts in its first gradient bucket's header and payload.
    enum Attack: CaseIterable {
        /// The header says 1 element (and the frame holds 1): the old coordinator read a whole
        /// bucket's worth past the frame.
        case truncatedBucket
        /// A full bucket at the wrong place in the arena.
        case shiftedOffset
        /// Float16 values where the run sends Float32.
        case wrongElementType
        /// Gradients claiming another worker's rank.
        case otherRank

        /// What the refusal must name.
        var reason: String {
            switch self {
            case .truncatedBucket: return "elementCount = 1"
            case .shiftedOffset: return "elementOffset = 1"
            case .wrongElementType: return "F16 payload"
            case .otherRank: return "as rank"
            }
        }
    }

    /// A raw DEALER speaking the protocol by hand.
    final class HostilePeer: Sendable {
        let socket: SocketThread
        init(endpoint: String) throws {
            socket = try SocketThread(.dealer(connect: endpoint, routingID: PeerID("hostile")))
        }

        /// Joins, waits for its work order, attacks, and returns the coordinator's answer.
        func attack(_ attack: Attack, joined: @Sendable () -> Void) async throws -> String {
            socket.send(.hello(Hello(configHash: nil, tokenizerHash: nil, name: "hostile", threads: 1)))
            var rank = -1
            var totalCount: Int?
            for await event in socket.events {
                guard case .message(let m) = event else { continue }
                switch try m.decoded() {
                case .welcome(let w):
                    rank = w.rank
                    joined()
                case .work(let order):
                    let plan = BucketPlan(elementCount: try XCTUnwrap(totalCount))
                    socket.send(frames(attack, order: order, rank: rank, plan: plan))
                case .weights(let b): totalCount = b.totalCount
                case .refuse(let reason): return reason
                default: break
                }
            }
            return "(no answer)"
        }

        private func frames(_ attack: Attack, order: WorkOrder, rank: Int, plan: BucketPlan) -> [Frame] {
            var header = MessageHeader(kind: .gradients)
            header.payloadType = .float32
            header.step = Int64(order.step)
            header.rank = Int64(rank)
            header.attempt = Int64(order.attempt)
            header.bucketIndex = 0
            header.bucketCount = Int64(plan.bucketCount)
            header.totalCount = Int64(plan.elementCount)
            // A node it really owes (its run is aligned here): the checks that fire are the plan's.
            header.values.0 = Int64(order.firstPosition)
            header.values.1 = Int64(order.microBatches.count)
            let count = plan.bucket(0).count
            var elements = count
            switch attack {
            case .truncatedBucket: elements = 1
            case .shiftedOffset:
                elements = count - 1
                header.elementOffset = 1
            case .wrongElementType: header.payloadType = .float16
            case .otherRank: header.rank = Int64(rank + 1)
            }
            header.elementCount = Int64(elements)
            let payload = [UInt8](repeating: 0x7f, count: elements * header.payloadType.elementSize)
            return [Frame(header.encoded()), Frame(payload)]
        }
    }

    func testBadBucketsAreRefusedAndChangeNoBit() async throws {
        let reference = try InProcessCluster.temporaryDirectory(for: self, prefix: "honest")
        try await InProcessCluster.train(try Self.config(), in: reference, workers: 2, over: .tcp)
        let want = try weights(reference)
        for attack in Attack.allCases {
            let dir = try InProcessCluster.temporaryDirectory(for: self, prefix: "hostile")
            let answer = AnswerBox()
            try await InProcessCluster.train(
                try Self.config(), in: dir, workers: 2, over: .tcp,
                coordinator: {
                    $0.joinTimeout = 30
                    $0.heartbeatInterval = 0.2
                },
                beforeWorkers: { endpoint in
                    // The hostile peer takes rank 0 first; the second honest worker waits as a spare
                    // and takes its place when it is dropped.
                    let peer = try HostilePeer(endpoint: endpoint)
                    let joined = AsyncStream<Void>.makeStream()
                    let task = Task { try await peer.attack(attack, joined: { joined.continuation.yield() }) }
                    answer.task = task
                    for await _ in joined.stream { break }
                })
            let reason = try await XCTUnwrap(answer.task).value
            answer.task = nil
            XCTAssertTrue(reason.hasPrefix("protocol violation"), "\(attack): \(reason)")
            XCTAssertTrue(reason.contains(attack.reason), "\(attack): \(reason)")
            XCTAssertEqual(try weights(dir), want, "\(attack): the hostile peer changed the weights")
            let attempts = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n").compactMap {
                    (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["attempts"] as? Int
                }
            XCTAssertEqual(attempts, [2, 1, 1, 1, 1, 1], "\(attack): step 1 is re-planned once, after the drop")
        }
    }

    final class AnswerBox: @unchecked Sendable { var task: Task<String, Error>? }

    func weights(_ dir: URL) throws -> [Float] {
        let file = try SafetensorsFile(
            path: dir.appendingPathComponent("checkpoints/\(CheckpointStore.directoryName(step: 6))/model.safetensors")
                .path)
        return try file.tensors.flatMap { try file.floats(named: $0.name) }
    }
}
