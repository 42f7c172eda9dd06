import Foundation
import TensorCore
import Training
import TransformerModel

/// How a worker finds and follows its coordinator.
public struct WorkerOptions: Sendable {
    /// The coordinator's endpoint (`tcp://HOST:PORT`).
    public var endpoint: String
    /// Shown in the coordinator's logs and status (e.g. the host name).
    public var name: String
    /// Compute threads of this worker (reported to the coordinator).
    public var threads: Int
    /// The worker's own config (its hash must match the coordinator's); nil takes the coordinator's.
    public var config: RunConfig?
    /// Silence from the coordinator after which the worker reconnects and joins again.
    public var coordinatorTimeout: Double = 20
    /// Total time to keep trying to (re)join before giving up with an error.
    public var giveUpAfter: Double = 120
    /// Seconds between heartbeats to the coordinator.
    public var heartbeatInterval: Double = 1
    /// Print join, step and reconnect lines to standard output.
    public var printProgress = true
    /// Test hook: when set, the gradient this worker sends for that step carries an infinity (as a
    /// Float16 overflow would), to test that every worker skips the step and the loss scale halves.
    /// Never set it outside tests (`worker --inject-non-finite-at-step`, hidden, sets it too).
    package var injectNonFiniteAtStep: Int?
    /// Test hook: a fault this worker plays when the work order for `step` arrives.
    package var fault: (step: Int, kind: WorkerFault)?
    /// Test hook: a fault this worker plays when the validation order after `step` arrives.
    package var validationFault: (step: Int, kind: WorkerFault)?
    /// Test hook: called after each work order's statistics were sent, with when its buckets left.
    package var gradientSendObserver: (@Sendable (GradientSendTimeline) -> Void)?
    /// CURVE keys (`--curve-secret`, `--coordinator-public`); nil connects without encryption.
    public var curve: WorkerCurve?

    /// Defaults for everything but where to connect, the name, threads and the config.
    public init(endpoint: String, name: String, threads: Int, config: RunConfig? = nil) {
        self.endpoint = endpoint
        self.name = name
        self.threads = threads
        self.config = config
    }
}

/// Faults a worker can play for tests of the coordinator's recovery.
package enum WorkerFault: Sendable {
    /// Vanishes at once without a word (as after kill -9): closes its socket and returns.
    case vanish
    /// Keeps its connection and heartbeats but never answers this order (a hung compute).
    case stall
}

/// Why a worker stopped.
public enum WorkerError: Error, CustomStringConvertible, Equatable {
    /// The coordinator refused this worker (config or tokenizer hash differs, a malformed hello,
    /// or a protocol violation); the reason is the coordinator's.
    case refused(String)
    /// No coordinator answered within `giveUpAfter` seconds.
    case coordinatorUnreachable(endpoint: String, seconds: Double)
    /// The coordinator's config cannot be used here.
    case badConfig(String)
    /// The coordinator's ZAP handler refused this worker's CURVE public key.
    case curveKeyRefused(publicKey: String, status: Int)
    /// The CURVE handshake cannot complete (wrong coordinator key, or no CURVE there).
    case curveHandshakeFailed(endpoint: String, reason: String)

    /// The message printed to the user, with what to do about it.
    public var description: String {
        switch self {
        case .refused(let r): return "the coordinator refused this worker: \(r)"
        case let .coordinatorUnreachable(e, s):
            return
                "no coordinator answered at \(e) for \(Int(s)) s; giving up (is it running, and is the endpoint right?)"
        case .badConfig(let m): return "cannot use the coordinator's config: \(m)"
        case let .curveKeyRefused(key, status):
            return
                "the coordinator refused this worker's CURVE key \(key) (ZAP status \(status)): add this worker's .public file to the coordinator's --allow-workers"
        case let .curveHandshakeFailed(e, r): return "CURVE handshake with the coordinator at \(e) failed: \(r)"
        }
    }
}

/// A data-parallel worker: joins the coordinator, keeps a model replica in sync with the weights it
/// broadcasts, and for each work order computes the gradient sum of its micro-batches and sends it
/// back in buckets. If the coordinator goes silent, it reconnects with backoff and joins again.
public actor Worker {
    /// The settings it was started with.
    public let options: WorkerOptions
    private let context: ZMQContext?
    private var replica: ReplicaTrainer?
    private var plan: BucketPlan?
    /// With `training.float16.parameters`: the broadcast's Float16 bits as they arrive, loaded into
    /// the Float16 replica before the next compute (`ParameterArena.loadParameters(half:)` takes
    /// the whole arena; a ranged load would make this buffer unnecessary).
    private var halfWeights: [UInt16] = []
    private var halfWeightsPending = false
    /// How gradients travel (`training.float16.gradients`).
    private var gradientType = TensorElementType.float32
    /// How weights must arrive (`training.float16.parameters`); a bucket of the other type is ignored.
    private var weightType = TensorElementType.float32
    /// Micro-batches one step has at most (`accumulation_steps x workers`): a larger work order is refused.
    private var maxMicroBatches = 0
    private var rank = -1
    /// Orders received and not yet computed, oldest first: computed one at a time, in order, so a
    /// validation runs with the weights broadcast before it.
    private var pending: [Job] = []
    private enum Job { case gradient(WorkOrder), validation(ValidationOrder) }
    private var computing = false
    private var joinedOnce = false
    private var finished = false
    private var socket: SocketThread?
    /// This worker's own compute thread (see `ComputeQueue`).
    private let computeQueue: ComputeQueue

    /// `context` is needed for `inproc://` endpoints (shared with the coordinator in one process).
    public init(options: WorkerOptions, context: ZMQContext? = nil) {
        self.options = options
        self.context = context
        computeQueue = ComputeQueue(label: "swift-transformer.compute.\(options.name)")
    }

    private func say(_ s: String) { if options.printProgress { printLine("[\(options.name)] \(s)") } }
    /// What went wrong is printed even when progress is not (the laptop mode's in-process
    /// workers): otherwise a failed compute shows only as the coordinator's step deadline, 600 s later.
    private func warn(_ s: String) { printError("[\(options.name)] \(s)") }

    /// Works until the coordinator says the run is over. Throws when refused, or when no
    /// coordinator answers for `giveUpAfter` seconds.
    public func run() async throws {
        // `connection` numbers every connection (a new routing id each time); `failures` counts
        // the reconnections since the last join, for the backoff, so a worker that has rejoined
        // many times over a long run still retries quickly after the next loss.
        var connection = 0, failures = 0
        var lostSince = now()
        while true {
            let outcome = try await session(attempt: connection)
            if outcome { return }
            if joinedOnce {
                lostSince = now()
                joinedOnce = false
                failures = 0
            }
            if now() - lostSince > options.giveUpAfter {
                throw WorkerError.coordinatorUnreachable(endpoint: options.endpoint, seconds: options.giveUpAfter)
            }
            let delay = Self.reconnectDelay(failures: failures)
            say("coordinator silent; reconnecting in \(String(format: "%.1f", delay)) s")
            try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            connection += 1
            failures += 1
        }
    }

    /// Seconds to wait before reconnection number `failures + 1` since the last join: 0.25 s,
    /// doubling, at most 5 s.
    package static func reconnectDelay(failures: Int) -> Double {
        Swift.min(5.0, 0.25 * pow(2, Double(Swift.min(failures, 5))))
    }

    /// One connection: hello, then messages until shutdown (true) or coordinator silence (false).
    private func session(attempt: Int) async throws -> Bool {
        let id = PeerID("\(options.name)-\(ProcessInfo.processInfo.processIdentifier)-\(attempt)")
        var socketOptions = SocketOptions()
        socketOptions.heartbeatInterval = options.heartbeatInterval
        socketOptions.maxMessageBytes = BucketPlan.maxFrameBytes
        let link = try WorkerLink(
            endpoint: options.endpoint, routingID: id, options: socketOptions, curve: options.curve, context: context)
        let socket = link.socket
        self.socket = socket
        defer {
            link.close()
            self.socket = nil
        }
        pending.removeAll()
        socket.send(
            .hello(
                Hello(
                    configHash: options.config?.configHash, tokenizerHash: nil, name: options.name,
                    threads: options.threads)))
        // The socket thread sends the heartbeats and notes every arrival, so neither depends on
        // this actor (or the coordinator's) being free; this task only watches the silence.
        socket.keepAlive(nil, with: heartbeatFrames(rank: 0))
        let watch = Task { [options] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(Swift.min(options.heartbeatInterval, 1) * 1e9))
                if let silent = socket.secondsSinceHeard(nil), silent > options.coordinatorTimeout {
                    socket.stop()
                    return
                }
            }
        }
        defer { watch.cancel() }
        for await event in socket.events {
            guard case .message(let m) = event else { continue }
            let message: WireMessage
            do { message = try m.decoded() } catch {
                warn("ignoring a malformed message: \(error)")
                continue
            }
            switch message {
            case .welcome(let w):
                try welcome(w)
                socket.keepAlive(nil, with: heartbeatFrames(rank: w.rank))
            case .refuse(let reason): throw WorkerError.refused(reason)
            case .weights(let bucket): receiveWeights(bucket)
            case .work(let order):
                if let fault = testFault(options.fault, step: order.step, at: "step \(order.step)") {
                    if fault == .vanish {
                        finished = true
                        return true
                    }
                    continue
                }
                if let problem = check(order) {
                    warn("ignoring a work order: \(problem)")
                    continue
                }
                pending.append(.gradient(order))
                startComputing()
            case .validate(let order):
                if let fault = testFault(
                    options.validationFault, step: order.step, at: "the validation after step \(order.step)")
                {
                    if fault == .vanish {
                        finished = true
                        return true
                    }
                    continue
                }
                guard replica != nil, order.rank == rank else {
                    say("ignoring a validation order for rank \(order.rank) (this worker is rank \(rank))")
                    continue
                }
                pending.append(.validation(order))
                startComputing()
            case .shutdown(let reason):
                say("done: \(reason)")
                finished = true
                return true
            case .heartbeat, .hello, .gradients, .stepStats, .validationPart: break
            }
        }
        try link.checkHandshake()
        return finished
    }

    /// The test fault to play at the order for `step` (nil: none), announced.
    private func testFault(_ fault: (step: Int, kind: WorkerFault)?, step: Int, at what: String) -> WorkerFault? {
        guard let fault, fault.step == step else { return nil }
        say(fault.kind == .vanish ? "test fault: vanishing at \(what)" : "test fault: never answering \(what)")
        return fault.kind
    }

    private func heartbeatFrames(rank: Int) -> [Frame] {
        WireMessage.heartbeat(Heartbeat(step: 0, rank: rank, nanoseconds: 0)).frames()
    }

    /// Why a work order cannot be computed (nil if it can): it must be for this worker's rank,
    /// after a welcome, with 1 to `accumulation_steps x workers` micro-batches.
    private func check(_ order: WorkOrder) -> String? {
        guard replica != nil, rank >= 0 else { return "it came before the welcome" }
        guard order.rank == rank else { return "it is for rank \(order.rank); this worker is rank \(rank)" }
        guard !order.microBatches.isEmpty, order.microBatches.count <= maxMicroBatches,
            order.firstPosition <= maxMicroBatches - order.microBatches.count
        else {
            return
                "it has micro-batches at positions \(order.firstPosition)..<\(order.firstPosition + order.microBatches.count) (a step has at most \(maxMicroBatches))"
        }
        guard order.gradientMultiplier.isFinite, order.gradientMultiplier > 0 else {
            return "its gradient multiplier \(order.gradientMultiplier) is not positive"
        }
        return nil
    }

    private func welcome(_ w: Welcome) throws {
        rank = w.rank
        joinedOnce = true
        if replica == nil {
            let config: RunConfig
            if let own = options.config {
                config = own
            } else {
                guard let text = w.config else { throw WorkerError.badConfig("the coordinator sent no config") }
                do { config = try RunConfig.parse(data: Data(text.utf8), source: "coordinator config") } catch {
                    throw WorkerError.badConfig("\(error)")
                }
            }
            let data = try makeTrainingData(config)
            // With Float16 parameters the replica keeps its weight matrices in Float16.
            let model = ReplicaTrainer.model(for: config, float16Parameters: config.training.float16.parameters)
            replica = ReplicaTrainer(config: config, model: model, data: data)
            plan = BucketPlan(elementCount: model.arena.layout.totalCount)
            gradientType = config.training.float16.gradients ? .float16 : .float32
            weightType = config.training.float16.parameters ? .float16 : .float32
            maxMicroBatches = config.training.accumulationSteps * Swift.max(1, w.worldSize)
        }
        say("joined as rank \(w.rank) of \(w.worldSize) at step \(w.step)")
    }

    private func receiveWeights(_ bucket: TensorBucket) {
        guard let replica, let plan else { return }
        let arena = replica.model.arena
        let count = arena.layout.totalCount
        do {
            try plan.check(bucket, kind: .weights, elementType: weightType)
            if arena.isFloat16 {
                if halfWeights.count != count { halfWeights = [UInt16](repeating: 0, count: count) }
                try halfWeights.withUnsafeMutableBufferPointer { buffer throws(ProtocolError) in
                    guard let base = buffer.baseAddress else { return }
                    try bucket.copyHalfValues(into: base, arenaCount: count)
                }
                halfWeightsPending = true
            } else {
                try bucket.copyValues(into: arena.values.pointer, arenaCount: count)
            }
        } catch {
            warn("ignoring weights: \(error)")
        }
    }

    private func startComputing() {
        guard !computing, !pending.isEmpty else { return }
        computing = true
        let job = pending.removeFirst()
        Task {
            switch job {
            case .gradient(let order): await self.compute(order)
            case .validation(let order): await self.validate(order)
            }
            self.computing = false
            self.startComputing()
        }
    }

    /// Computes the ordered units of the step's validation with the replica's weights (those of
    /// the step: the broadcast came before the order) and sends each unit's result as it is done.
    private func validate(_ order: ValidationOrder) async {
        guard let replica, let socket else { return }
        let work = ValidationWork(
            data: replica.data, translating: order.translating, maxLen: replica.model.config.maxLen)
        if let bad = order.units.first(where: { $0 >= work.unitCount }) {
            return say("ignoring a validation order: unit \(bad) is outside 0..<\(work.unitCount)")
        }
        // Each unit at most once: an order cannot make this worker compute more than a validation.
        guard Set(order.units).count == order.units.count else {
            return say("ignoring a validation order: it names a unit more than once")
        }
        let box = Exclusive(replica)
        let rank = rank
        do {
            try await computeQueue.run {
                let model = box.value.model
                let decoder = GreedyDecoder(model: model)
                for unit in order.units {
                    let part = try work.compute(unit: unit, model: model, decoder: decoder)
                    socket.send(
                        .validationPart(ValidationPartMessage(step: order.step, rank: rank, unit: unit, part: part)))
                }
            }
        } catch {
            warn("validation after step \(order.step) failed: \(error)")
        }
    }

    private func compute(_ order: WorkOrder) async {
        guard let replica, let plan, let socket else { return }
        replica.gradientMultiplier = order.gradientMultiplier
        if halfWeightsPending {
            halfWeights.withUnsafeBufferPointer {
                if let base = $0.baseAddress { replica.model.arena.loadParameters(half: base) }
            }
            halfWeightsPending = false
        }
        // Each bucket leaves as soon as backward has finished it (the last layers first), while
        // the rest of backward still runs: see `GradientStream`.
        let stream = GradientStream(
            socket: socket, plan: plan, order: order, rank: rank, type: gradientType,
            injectNonFinite: order.step == options.injectNonFiniteAtStep)
        let box = Exclusive((replica, stream))
        let stats: LossStatistics
        do {
            stats = try await computeQueue.run {
                let (replica, stream) = box.value
                stream.computeStarted = now()
                let stats = try replica.computeGradientParts(
                    step: order.step, microBatches: order.microBatches,
                    firstPosition: order.firstPosition
                ) { node, values, from in
                    stream.sendFinal(node, values, from: from)
                }
                stream.computeEnded = now()
                return stats
            }
        } catch {
            warn("step \(order.step) failed: \(error)")
            return
        }
        stream.finish(parts: replica.parts, stats: stats)
        options.gradientSendObserver?(stream.timeline)
    }
}
