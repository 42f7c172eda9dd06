/// A message of the distributed-training protocol, as the actors see it.
///
/// `frames()` encodes it (header frame + optional payload frame) and `init(frames:)` decodes and
/// validates it. The checks every kind shares (header, frame count, payload type and size) are
/// here; each message type then reads and checks its own fields (`init(header:payload:)`) and
/// writes them (`encode(into:)`), next to its definition. Tensors travel as raw Float32/Float16
/// bytes; only the small handshake fields are JSON. The protocol version is in every header; a
/// peer of another version fails to decode with `ProtocolError.unsupportedVersion`.
package enum WireMessage: Sendable {
    case hello(Hello)
    case welcome(Welcome)
    /// Human-readable reason, e.g. "config hash differs: worker 1a2b..., coordinator 3c4d...".
    case refuse(reason: String)
    case weights(TensorBucket)
    case work(WorkOrder)
    case gradients(TensorBucket)
    case stepStats(StepStatistics)
    case heartbeat(Heartbeat)
    case shutdown(reason: String)
    case validate(ValidationOrder)
    case validationPart(ValidationPartMessage)

    package var kind: MessageKind {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .refuse: return .refuse
        case .weights: return .weights
        case .work: return .work
        case .gradients: return .gradients
        case .stepStats: return .stepStats
        case .heartbeat: return .heartbeat
        case .shutdown: return .shutdown
        case .validate: return .validate
        case .validationPart: return .validationPart
        }
    }

    /// Decodes and validates received frames: header size, magic, version, kind, payload type,
    /// frame count, payload size against `elementCount`, then the message's own fields.
    package init(frames: [Frame]) throws(ProtocolError) {
        guard let first = frames.first else { throw .noFrames }
        let header = try first.withUnsafeBytes { raw throws(ProtocolError) in try MessageHeader(decoding: raw) }
        let kind = header.kind
        let allowed = kind.payloadTypes
        guard frames.count == (allowed.isEmpty ? 1 : 2) else {
            throw .frameCount(kind: kind, expected: allowed.isEmpty ? 1 : 2, actual: frames.count)
        }
        var payload: Frame?
        if !allowed.isEmpty {
            guard allowed.contains(header.payloadType) else {
                throw .wrongPayloadType(kind: kind, expected: allowed, actual: header.payloadType)
            }
            _ = try header.nonNegative("elementCount", header.elementCount)
            let expected = header.elementCount.multipliedReportingOverflow(by: Int64(header.payloadType.elementSize))
            guard !expected.overflow, expected.partialValue == Int64(frames[1].count) else {
                throw .payloadSize(kind: kind, expectedBytes: header.payloadBytes, actualBytes: frames[1].count)
            }
            payload = frames[1]
        }
        // The frame count was checked against the kind: a kind with a payload has one here.
        func body() -> Frame { payload ?? Frame([]) }
        switch kind {
        case .hello: self = .hello(try Hello(header: header, payload: body()))
        case .welcome: self = .welcome(try Welcome(header: header, payload: body()))
        case .refuse: self = .refuse(reason: try Self.text(body(), kind: kind))
        case .shutdown: self = .shutdown(reason: try Self.text(body(), kind: kind))
        case .weights: self = .weights(try TensorBucket(header: header, payload: body()))
        case .gradients: self = .gradients(try TensorBucket(header: header, payload: body()))
        case .work: self = .work(try WorkOrder(header: header, payload: body()))
        case .stepStats: self = .stepStats(try StepStatistics(header: header))
        case .heartbeat: self = .heartbeat(try Heartbeat(header: header))
        case .validate: self = .validate(try ValidationOrder(header: header, payload: body()))
        case .validationPart: self = .validationPart(try ValidationPartMessage(header: header, payload: body()))
        }
    }

    /// The frames to send: the header, then the payload if the kind has one.
    ///
    /// Tensor buckets reuse their payload frame, so encoding a bucket copies nothing and the same
    /// frames may be sent to many peers.
    package func frames() -> [Frame] {
        var header = MessageHeader(kind: kind)
        let payload: Frame?
        switch self {
        case .hello(let hello): payload = hello.encode(into: &header)
        case .welcome(let welcome): payload = welcome.encode(into: &header)
        case .refuse(let reason), .shutdown(let reason):
            payload = Frame(Array(reason.utf8))
            header.payloadType = .utf8
        case .weights(let bucket), .gradients(let bucket): payload = bucket.encode(into: &header)
        case .work(let order): payload = order.encode(into: &header)
        case .stepStats(let stats):
            stats.encode(into: &header)
            payload = nil
        case .heartbeat(let beat):
            beat.encode(into: &header)
            payload = nil
        case .validate(let order): payload = order.encode(into: &header)
        case .validationPart(let part): payload = part.encode(into: &header)
        }
        guard let payload else { return [Frame(header.encoded())] }
        header.elementCount = Int64(payload.count / max(1, header.payloadType.elementSize))
        return [Frame(header.encoded()), payload]
    }

    private static func text(_ frame: Frame, kind: MessageKind) throws(ProtocolError) -> String {
        guard let s = String(validating: frame.bytes, as: UTF8.self) else { throw .invalidText(kind: kind) }
        return s
    }
}
