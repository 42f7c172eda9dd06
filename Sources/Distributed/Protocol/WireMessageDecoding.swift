import Training

extension WireMessage {
    /// Decodes and validates received frames: header size, magic, version, kind, payload type,
    /// frame count, payload size against `elementCount`, and the ranges of the fields.
    public init(frames: [Frame]) throws(ProtocolError) {
        guard let first = frames.first else { throw .noFrames }
        let header = try first.withUnsafeBytes { raw throws(ProtocolError) in try MessageHeader(decoding: raw) }
        let kind = header.kind
        let payload = frames.count > 1 ? frames[1] : nil

        func requireFrames(_ n: Int) throws(ProtocolError) {
            guard frames.count == n else { throw .frameCount(kind: kind, expected: n, actual: frames.count) }
        }
        func requirePayload(_ allowed: [PayloadType]) throws(ProtocolError) -> Frame {
            try requireFrames(2)
            guard allowed.contains(header.payloadType) else {
                throw .wrongPayloadType(kind: kind, expected: allowed, actual: header.payloadType)
            }
            guard header.elementCount >= 0 else { throw .invalidField(kind: kind, field: "elementCount", value: header.elementCount, reason: "is negative") }
            let expected = header.elementCount.multipliedReportingOverflow(by: Int64(header.payloadType.elementSize))
            guard let payload, !expected.overflow, expected.partialValue == Int64(payload.count) else {
                throw .payloadSize(kind: kind, expectedBytes: header.payloadBytes, actualBytes: payload?.count ?? 0)
            }
            return payload
        }
        func nonNegative(_ field: String, _ value: Int64) throws(ProtocolError) -> Int {
            guard value >= 0 else { throw .invalidField(kind: kind, field: field, value: value, reason: "is negative") }
            return Int(value)
        }
        func text(_ frame: Frame) throws(ProtocolError) -> String {
            guard let s = String(validating: frame.bytes, as: UTF8.self) else { throw .invalidText(kind: kind) }
            return s
        }

        switch kind {
        case .hello:
            let json = try HandshakeJSON.Object(requirePayload([.json]).bytes, kind: kind)
            self = .hello(Hello(configHash: try json.optionalString("config_hash"), tokenizerHash: try json.optionalString("tokenizer_hash"),
                                name: try json.string("name"), threads: try json.int("threads")))
        case .welcome:
            let json = try HandshakeJSON.Object(requirePayload([.json]).bytes, kind: kind)
            let welcome = Welcome(rank: try json.int("rank"), worldSize: try json.int("world_size"), step: try json.int("step"),
                                  dataCursor: try json.int("data_cursor"), config: try json.optionalString("config"))
            for (field, value) in [("rank", welcome.rank), ("world_size", welcome.worldSize), ("step", welcome.step), ("data_cursor", welcome.dataCursor)] {
                _ = try nonNegative(field, Int64(value))
            }
            self = .welcome(welcome)
        case .refuse:
            self = .refuse(reason: try text(requirePayload([.utf8])))
        case .shutdown:
            self = .shutdown(reason: try text(requirePayload([.utf8])))
        case .weights, .gradients:
            let frame = try requirePayload([.float32, .float16])
            _ = try nonNegative("step", header.step)
            _ = try nonNegative("rank", header.rank)
            _ = try nonNegative("group", header.group)
            let offset = try nonNegative("elementOffset", header.elementOffset)
            let total = try nonNegative("totalCount", header.totalCount)
            let count = Int(header.elementCount)
            guard offset <= total, count <= total - offset else {
                throw .invalidField(kind: kind, field: "elementOffset + elementCount", value: header.elementOffset &+ header.elementCount,
                                    reason: "exceeds totalCount \(total)")
            }
            let bucketCount = try nonNegative("bucketCount", header.bucketCount)
            let index = try nonNegative("bucketIndex", header.bucketIndex)
            guard index < bucketCount else {
                throw .invalidField(kind: kind, field: "bucketIndex", value: header.bucketIndex, reason: "is not below bucketCount \(bucketCount)")
            }
            // Gradients name their tree node (values 0 and 1: start, leaf count): an aligned power of two.
            let nodeStart = try nonNegative("node start", header.values.0), nodeCount = try nonNegative("node leaf count", header.values.1)
            if kind == .gradients {
                guard nodeCount > 0, nodeCount & (nodeCount - 1) == 0, nodeStart % nodeCount == 0 else {
                    throw .invalidField(kind: kind, field: "node", value: header.values.1,
                                        reason: "is not an aligned power-of-two block of leaves (start \(nodeStart))")
                }
            }
            let bucket = TensorBucket(header: header, elementType: header.payloadType == .float32 ? .float32 : .float16, payload: frame)
            self = kind == .weights ? .weights(bucket) : .gradients(bucket)
        case .work:
            let frame = try requirePayload([.int64])
            let words = frame.int64Words()
            if let bad = words.first(where: { $0 < 0 }) {
                throw .invalidField(kind: kind, field: "micro-batch index", value: bad, reason: "is negative")
            }
            let indices = words.map { Int($0) }
            self = .work(WorkOrder(step: try nonNegative("step", header.step), rank: try nonNegative("rank", header.rank),
                                   group: try nonNegative("group", header.group),
                                   lossScale: Float(bitPattern: UInt32(truncatingIfNeeded: header.values.0)),
                                   firstPosition: try nonNegative("first position", header.values.1), microBatches: indices))
        case .stepStats:
            try requireFrames(1)
            let loss = LossStatistics(lossSum: Double(bitPattern: UInt64(bitPattern: header.values.2)),
                                      nllSum: Double(bitPattern: UInt64(bitPattern: header.values.3)),
                                      tokens: try nonNegative("tokens", header.values.0), correct: try nonNegative("correct", header.values.1))
            self = .stepStats(StepStatistics(step: try nonNegative("step", header.step), rank: try nonNegative("rank", header.rank),
                                             group: try nonNegative("group", header.group), loss: loss, finite: header.flags & 1 != 0))
        case .validate:
            self = .validate(try ValidationOrder(header: header, payload: requirePayload([.int64])))
        case .validationPart:
            self = .validationPart(try ValidationPartMessage(header: header, payload: requirePayload([.int64])))
        case .heartbeat:
            try requireFrames(1)
            self = .heartbeat(Heartbeat(step: try nonNegative("step", header.step), rank: try nonNegative("rank", header.rank),
                                        nanoseconds: UInt64(bitPattern: header.values.0)))
        }
    }
}
