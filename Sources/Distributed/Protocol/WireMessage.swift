import Training

/// A message of the distributed-training protocol, as the actors see it.
///
/// `frames()` encodes it (header frame + optional payload frame) and `init(frames:)` decodes and
/// validates it. Tensors travel as raw Float32/Float16 bytes; only the small handshake fields are
/// JSON. The protocol version is in every header; a peer of another version fails to decode with
/// `ProtocolError.unsupportedVersion`.
public enum WireMessage: Sendable {
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

    public var kind: MessageKind {
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
}

/// worker -> coordinator, first message. The protocol version is the header's.
public struct Hello: Sendable, Equatable {
    /// Hash of the worker's config; nil if the worker has none and takes the coordinator's.
    public var configHash: String?
    /// Hash of the worker's tokenizer; nil if it has none.
    public var tokenizerHash: String?
    /// Shown by the coordinator ("worker-2 joined").
    public var name: String
    /// Compute threads the worker uses.
    public var threads: Int

    public init(configHash: String?, tokenizerHash: String?, name: String, threads: Int) {
        self.configHash = configHash
        self.tokenizerHash = tokenizerHash
        self.name = name
        self.threads = threads
    }
}

/// coordinator -> worker: accepted. Weights for `step` follow.
public struct Welcome: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    /// The last completed step (the worker's first work order is for a later one).
    public var step: Int
    /// Global index of the next micro-batch of the data stream.
    public var dataCursor: Int
    /// The run's config file (JSON text), for a worker started without one.
    public var config: String?

    public init(rank: Int, worldSize: Int, step: Int, dataCursor: Int, config: String? = nil) {
        self.rank = rank
        self.worldSize = worldSize
        self.step = step
        self.dataCursor = dataCursor
        self.config = config
    }
}

/// coordinator -> worker: compute these global micro-batches of `step`, then send their gradient
/// sum (as `gradients` buckets and one `stepStats`, all tagged with `group`).
public struct WorkOrder: Sendable, Equatable {
    public var step: Int
    /// The worker's rank.
    public var rank: Int
    /// Distinguishes several orders for one step (e.g. extra micro-batches taken over from a lost
    /// worker); 0 for the first.
    public var group: Int
    /// Loss scale for Float16 gradients (1 without).
    public var lossScale: Float
    /// Position of `microBatches[0]` among the step's micro-batches (the rest follow it): where
    /// the worker's sums sit in the step's canonical tree.
    public var firstPosition: Int
    /// Global micro-batch indices, in the order they are to be accumulated.
    public var microBatches: [Int]

    public init(step: Int, rank: Int, group: Int = 0, lossScale: Float = 1, firstPosition: Int = 0, microBatches: [Int]) {
        self.step = step
        self.rank = rank
        self.group = group
        self.lossScale = lossScale
        self.firstPosition = firstPosition
        self.microBatches = microBatches
    }
}

/// worker -> coordinator: the sums that go with one gradient (header values 0-3: tokens, correct,
/// loss sum and NLL sum as Float64 bits; flag bit 0: finite).
public struct StepStatistics: Sendable, Equatable {
    public var step: Int
    public var rank: Int
    public var group: Int
    public var loss: LossStatistics
    /// Every value of the worker's gradient sum and loss was finite.
    public var finite: Bool

    public init(step: Int, rank: Int, group: Int = 0, loss: LossStatistics, finite: Bool) {
        self.step = step
        self.rank = rank
        self.group = group
        self.loss = loss
        self.finite = finite
    }
}

/// Both ways: "I am alive" (header value 0: sender's monotonic clock in nanoseconds).
public struct Heartbeat: Sendable, Equatable {
    /// The sender's current step.
    public var step: Int
    public var rank: Int
    /// The sender's monotonic clock (e.g. `DispatchTime.now().uptimeNanoseconds`), for round trips.
    public var nanoseconds: UInt64

    public init(step: Int, rank: Int, nanoseconds: UInt64) {
        self.step = step
        self.rank = rank
        self.nanoseconds = nanoseconds
    }
}
