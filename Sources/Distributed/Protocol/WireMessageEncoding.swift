extension WireMessage {
    /// The frames to send: the header, then the payload if the kind has one.
    ///
    /// Tensor buckets reuse their payload frame, so encoding a bucket copies nothing and the same
    /// frames may be sent to many peers.
    public func frames() -> [Frame] {
        var header = MessageHeader(kind: kind)
        let payload: Frame?
        switch self {
        case .hello(let hello):
            payload = Frame(HandshakeJSON.encode([
                ("config_hash", hello.configHash.map { .string($0) } ?? .null),
                ("tokenizer_hash", hello.tokenizerHash.map { .string($0) } ?? .null),
                ("name", .string(hello.name)),
                ("threads", .int(hello.threads)),
            ]))
            header.payloadType = .json
        case .welcome(let welcome):
            payload = Frame(HandshakeJSON.encode([
                ("rank", .int(welcome.rank)),
                ("world_size", .int(welcome.worldSize)),
                ("step", .int(welcome.step)),
                ("data_cursor", .int(welcome.dataCursor)),
                ("config", welcome.config.map { .string($0) } ?? .null),
            ]))
            header.payloadType = .json
            header.rank = Int64(welcome.rank)
            header.step = Int64(welcome.step)
        case .refuse(let reason), .shutdown(let reason):
            payload = Frame(Array(reason.utf8))
            header.payloadType = .utf8
        case .weights(let bucket), .gradients(let bucket):
            payload = bucket.payload
            header.payloadType = bucket.elementType.payloadType
            header.step = Int64(bucket.step)
            header.rank = Int64(bucket.rank)
            header.group = Int64(bucket.group)
            header.bucketIndex = Int64(bucket.index)
            header.bucketCount = Int64(bucket.bucketCount)
            header.elementOffset = Int64(bucket.elementOffset)
            header.totalCount = Int64(bucket.totalCount)
            if let node = bucket.node { header.values.0 = Int64(node.start); header.values.1 = Int64(node.count) }
        case .work(let order):
            payload = Frame(int64Words: order.microBatches.map { Int64($0) })
            header.payloadType = .int64
            header.step = Int64(order.step)
            header.rank = Int64(order.rank)
            header.group = Int64(order.group)
            header.values.0 = Int64(order.lossScale.bitPattern)
            header.values.1 = Int64(order.firstPosition)
        case .stepStats(let stats):
            payload = nil
            header.step = Int64(stats.step)
            header.rank = Int64(stats.rank)
            header.group = Int64(stats.group)
            header.flags = stats.finite ? 1 : 0
            header.values = (Int64(stats.loss.tokens), Int64(stats.loss.correct),
                             Int64(bitPattern: stats.loss.lossSum.bitPattern), Int64(bitPattern: stats.loss.nllSum.bitPattern))
        case .validate(let order):
            payload = order.encode(into: &header)
        case .validationPart(let part):
            payload = part.encode(into: &header)
        case .heartbeat(let beat):
            payload = nil
            header.step = Int64(beat.step)
            header.rank = Int64(beat.rank)
            header.values.0 = Int64(bitPattern: beat.nanoseconds)
        }
        guard let payload else { return [Frame(header.encoded())] }
        header.elementCount = Int64(payload.count / max(1, header.payloadType.elementSize))
        return [Frame(header.encoded()), payload]
    }
}
