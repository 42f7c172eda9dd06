/// worker -> coordinator, first message. The protocol version is the header's. JSON payload:
/// `config_hash`, `tokenizer_hash` (string or null), `name`, `threads`.
package struct Hello: Sendable, Equatable {
    /// Hash of the worker's config; nil if the worker has none and takes the coordinator's.
    package var configHash: String?
    /// Hash of the worker's tokenizer; nil if it has none.
    package var tokenizerHash: String?
    /// Shown by the coordinator ("worker-2 joined").
    package var name: String
    /// Compute threads the worker uses.
    package var threads: Int

    package init(configHash: String?, tokenizerHash: String?, name: String, threads: Int) {
        self.configHash = configHash
        self.tokenizerHash = tokenizerHash
        self.name = name
        self.threads = threads
    }

    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let json = try HandshakeJSON.Object(payload.bytes, kind: .hello)
        self.init(
            configHash: try json.optionalString("config_hash"),
            tokenizerHash: try json.optionalString("tokenizer_hash"),
            name: try json.string("name"), threads: try json.int("threads"))
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = .json
        return Frame(
            HandshakeJSON.encode([
                ("config_hash", configHash.map { .string($0) } ?? .null),
                ("tokenizer_hash", tokenizerHash.map { .string($0) } ?? .null),
                ("name", .string(name)),
                ("threads", .int(threads)),
            ]))
    }
}

/// coordinator -> worker: accepted. Weights for `step` follow. Header: rank, step. JSON payload:
/// `rank`, `world_size`, `step`, `data_cursor` (non-negative), `config` (string or null).
package struct Welcome: Sendable, Equatable {
    package var rank: Int
    package var worldSize: Int
    /// The last completed step (the worker's first work order is for a later one).
    package var step: Int
    /// Global index of the next micro-batch of the data stream.
    package var dataCursor: Int
    /// The run's config file (JSON text), for a worker started without one.
    package var config: String?

    package init(rank: Int, worldSize: Int, step: Int, dataCursor: Int, config: String? = nil) {
        self.rank = rank
        self.worldSize = worldSize
        self.step = step
        self.dataCursor = dataCursor
        self.config = config
    }

    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let json = try HandshakeJSON.Object(payload.bytes, kind: .welcome)
        self.init(
            rank: try json.int("rank"), worldSize: try json.int("world_size"), step: try json.int("step"),
            dataCursor: try json.int("data_cursor"), config: try json.optionalString("config"))
        for (field, value) in [("rank", rank), ("world_size", worldSize), ("step", step), ("data_cursor", dataCursor)] {
            _ = try header.nonNegative(field, Int64(value))
        }
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = .json
        header.rank = Int64(rank)
        header.step = Int64(step)
        return Frame(
            HandshakeJSON.encode([
                ("rank", .int(rank)),
                ("world_size", .int(worldSize)),
                ("step", .int(step)),
                ("data_cursor", .int(dataCursor)),
                ("config", config.map { .string($0) } ?? .null),
            ]))
    }
}
