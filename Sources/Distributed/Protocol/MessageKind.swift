/// What a message is; the `kind` byte of the header.
package enum MessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// worker -> coordinator: config hash, tokenizer hash, name, threads (JSON payload).
    case hello = 1
    /// coordinator -> worker: rank, world size, step, data cursor, config (JSON payload).
    case welcome = 2
    /// coordinator -> worker: why the worker cannot join (UTF-8 payload).
    case refuse = 3
    /// coordinator -> worker: one bucket of the parameter arena (Float32 or Float16 payload).
    case weights = 4
    /// coordinator -> worker: the global micro-batch indices to compute for a step (Int64 payload).
    case work = 5
    /// worker -> coordinator: one bucket of the worker's gradient sum (Float32 or Float16 payload).
    case gradients = 6
    /// worker -> coordinator: token count, loss sums, correct count and finiteness of a step (no payload).
    case stepStats = 7
    /// both ways: liveness (no payload).
    case heartbeat = 8
    /// both ways: the sender is leaving, or tells the peer to (UTF-8 payload).
    case shutdown = 9
    /// coordinator -> worker: the validation units to compute with the step's weights (Int64 payload).
    case validate = 10
    /// worker -> coordinator: the result of one validation unit (Int64 payload).
    case validationPart = 11

    /// The payload types a message of this kind may carry; empty: the header is the whole message.
    package var payloadTypes: [PayloadType] {
        switch self {
        case .hello, .welcome: return [.json]
        case .refuse, .shutdown: return [.utf8]
        case .weights, .gradients: return [.float32, .float16]
        case .work, .validate, .validationPart: return [.int64]
        case .stepStats, .heartbeat: return []
        }
    }

    package var description: String {
        switch self {
        case .hello: return "hello"
        case .welcome: return "welcome"
        case .refuse: return "refuse"
        case .weights: return "weights"
        case .work: return "work"
        case .gradients: return "gradients"
        case .stepStats: return "stepStats"
        case .heartbeat: return "heartbeat"
        case .shutdown: return "shutdown"
        case .validate: return "validate"
        case .validationPart: return "validationPart"
        }
    }
}

/// How the payload frame's bytes are to be read; the `payloadType` byte of the header.
package enum PayloadType: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    case float32 = 1
    case float16 = 2
    case int64 = 3
    case utf8 = 4
    case json = 5

    /// Bytes per element (`elementCount` counts elements; for text, bytes).
    package var elementSize: Int {
        switch self {
        case .none: return 0
        case .float32: return 4
        case .float16: return 2
        case .int64: return 8
        case .utf8, .json: return 1
        }
    }

    package var description: String {
        switch self {
        case .none: return "none"
        case .float32: return "F32"
        case .float16: return "F16"
        case .int64: return "I64"
        case .utf8: return "UTF-8"
        case .json: return "JSON"
        }
    }
}

/// How a tensor bucket travels: Float32 (exact) or Float16 (half the bytes, rounded).
package enum TensorElementType: Sendable, Equatable {
    case float32, float16

    package var payloadType: PayloadType { self == .float32 ? .float32 : .float16 }
    package var byteSize: Int { self == .float32 ? 4 : 2 }
}
