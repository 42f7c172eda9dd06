import Distributed
import TensorCore
import Training

/// A multipart message as one fuzz input: the frames joined by a separator that real headers and
/// small payloads do not contain, so byte mutations change frame contents and occasionally the
/// number of frames.
package enum FuzzFrames {
    package static let separator = Array("|FRAME|".utf8)

    /// The frames of `bytes`; the empty input is a message without frames.
    package static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        guard !bytes.isEmpty else { return [] }
        var frames: [[UInt8]] = []
        var start = 0, i = 0
        while i + separator.count <= bytes.count {
            if bytes[i] == separator[0] && bytes[i..<(i + separator.count)].elementsEqual(separator) {
                frames.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        frames.append(Array(bytes[start...]))
        return frames
    }

    package static func join(_ frames: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, frame) in frames.enumerated() {
            if i > 0 { out += separator }
            out += frame
        }
        return out
    }
}

extension FuzzTarget {
    /// `WireMessage(frames:)`: every message kind, header and payload.
    static let wireMessage = FuzzTarget(
        name: "wire-message", summary: "WireMessage(frames:): header frame + payload frame",
        isJSON: false
    ) { bytes in
        decodeFrames(FuzzFrames.split(bytes).map { Frame($0) })
    }

    /// The JSON payload of `hello` and `welcome` (HandshakeJSON), behind a valid header of each kind.
    static let handshakeJSON = FuzzTarget(
        name: "handshake-json", summary: "HandshakeJSON: hello and welcome payloads",
        isJSON: true
    ) { bytes in
        var outcome = FuzzOutcome.rejected
        for kind in [MessageKind.hello, .welcome] {
            var header = MessageHeader(kind: kind)
            header.payloadType = .json
            header.elementCount = Int64(bytes.count)
            if decodeFrames([Frame(header.encoded()), Frame(bytes)]) == .accepted { outcome = .accepted }
        }
        return outcome
    }

    /// Decodes, uses what a receiver uses, and checks that re-encoding is stable.
    private static func decodeFrames(_ frames: [Frame]) -> FuzzOutcome {
        let message: WireMessage
        do {
            message = try WireMessage(frames: frames)
        } catch {
            _ = "\(error)"  // The log line a receiver writes must not trap either.
            return .rejected
        }
        switch message {
        case .weights(let bucket), .gradients(let bucket): readBucket(bucket)
        default: break
        }
        let once = message.frames()
        let again: WireMessage
        do {
            again = try WireMessage(frames: once)
        } catch {
            fatalError("fuzz invariant failed: a re-encoded \(message.kind) message does not decode: \(error)")
        }
        fuzzInvariant(
            again.frames().map(\.bytes) == once.map(\.bytes),
            "re-encoding a decoded \(message.kind) message is not stable")
        return .accepted
    }

    /// What the coordinator and workers do with a bucket, into an arena of the size the bucket
    /// claims when that is small (a receiver's arena has the size of its own plan, never the peer's).
    private static func readBucket(_ bucket: TensorBucket) {
        fuzzInvariant(
            bucket.payload.count == bucket.elementCount * bucket.elementType.byteSize,
            "payload of \(bucket.payload.count) bytes for \(bucket.elementCount) elements")
        fuzzInvariant(
            bucket.range.upperBound <= bucket.totalCount, "bucket range \(bucket.range) beyond \(bucket.totalCount)")
        guard bucket.totalCount <= 1 << 16 else { return }
        let arena = FloatBuffer(count: bucket.totalCount)
        do {
            try bucket.copyValues(into: arena.pointer, arenaCount: bucket.totalCount)
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, bucket.totalCount))
            defer { halves.deallocate() }
            try bucket.copyHalfValues(into: halves, arenaCount: bucket.totalCount)
            // A mismatched arena must be refused, not written.
            do {
                try bucket.copyValues(into: arena.pointer, arenaCount: bucket.totalCount + 1)
                fuzzInvariant(false, "copyValues accepted an arena of another size")
            } catch {}
        } catch {
            fuzzInvariant(false, "copyValues refused the arena of the bucket's own size: \(error)")
        }
        let scratch = FloatBuffer()
        let sum = bucket.withFloat32Values(scratch: scratch) { values in values.reduce(Float(0), +) }
        _ = sum
    }
}

extension FuzzTarget {
    /// One message of every kind, as the coordinator and workers encode them: the wire seeds
    /// (`fuzz --make-seeds wire-message DIR` writes them, joined by `FuzzFrames.separator`).
    package static func wireSeedMessages() -> [(name: String, message: WireMessage)] {
        let plan = BucketPlan(elementCount: 10, maxBucketBytes: 16)
        let arena = UnsafeMutablePointer<Float>.allocate(capacity: plan.elementCount)
        defer { arena.deallocate() }
        for i in 0..<plan.elementCount { (arena + i).initialize(to: Float(i) * 0.25 - 1) }
        func bucket(_ index: Int, _ type: TensorElementType, node: TreeNode? = nil) -> TensorBucket {
            TensorBucket(step: 3, rank: 1, node: node, bucket: plan.bucket(index), of: plan, from: arena, as: type)
        }
        let loss = LossStatistics(lossSum: 12.5, nllSum: 11.25, tokens: 40, correct: 17)
        return [
            ("hello", .hello(Hello(configHash: "1a2b3c4d5e6f7081", tokenizerHash: nil, name: "worker-1", threads: 2))),
            (
                "welcome",
                .welcome(Welcome(rank: 1, worldSize: 2, step: 3, dataCursor: 24, config: "{\"name\":\"copy\"}"))
            ),
            ("refuse", .refuse(reason: "config hash differs")),
            ("shutdown", .shutdown(reason: "training finished")),
            ("weights-f32", .weights(bucket(0, .float32))),
            ("weights-f16", .weights(bucket(2, .float16))),
            ("gradients-f32", .gradients(bucket(1, .float32, node: TreeNode(start: 2, count: 2)))),
            ("gradients-f16", .gradients(bucket(2, .float16, node: TreeNode(start: 0, count: 1)))),
            (
                "work",
                .work(
                    WorkOrder(
                        step: 4, rank: 1, attempt: 0, gradientMultiplier: 1024, firstPosition: 4,
                        microBatches: [8, 9, 10, 11]))
            ),
            ("step-stats", .stepStats(StepStatistics(step: 4, rank: 1, loss: loss, finite: true))),
            ("heartbeat", .heartbeat(Heartbeat(step: 4, rank: 1, nanoseconds: 123_456_789))),
            ("validate", .validate(ValidationOrder(step: 4, rank: 1, translating: true, units: [1, 3, 5]))),
            (
                "validation-loss",
                .validationPart(ValidationPartMessage(step: 4, rank: 1, unit: 1, part: .loss(loss, exact: 3)))
            ),
            (
                "validation-translations",
                .validationPart(
                    ValidationPartMessage(
                        step: 4, rank: 1, unit: 5,
                        part: .translations([[5, 6, 7], [], [4]])))
            ),
        ]
    }
}
