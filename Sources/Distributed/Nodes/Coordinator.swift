import Foundation
import TensorCore
import Training
import TransformerModel

/// Network and liveness settings of the coordinator.
public struct CoordinatorOptions: Sendable {
    public var bind: String
    /// Workers to wait for before the first step; each step uses `accumulation_steps x workers`
    /// micro-batches whatever happens to individual workers, so a failure never changes the math.
    public var workers: Int
    public var joinTimeout: Double = 600
    public var heartbeatInterval: Double = 1
    /// A worker silent this long is dropped.
    public var heartbeatTimeout: Double = 10
    /// A step not finished this long after its work orders drops the workers still missing.
    public var stepTimeout: Double = 600
    /// CURVE keys and the admitted workers' public keys; nil accepts any peer, unencrypted.
    public var curve: CoordinatorCurve?

    public init(bind: String, workers: Int) { self.bind = bind; self.workers = workers }
}

public enum CoordinatorError: Error, CustomStringConvertible {
    case notEnoughWorkers(joined: Int, wanted: Int, seconds: Double)
    case transport(String)

    public var description: String {
        switch self {
        case let .notEnoughWorkers(j, w, s):
            return "only \(j) of \(w) workers joined within \(Int(s)) s (start them with `worker --coordinator ENDPOINT`)"
        case .transport(let m): return "transport failure: \(m)"
        }
    }
}

/// The coordinator: admits workers (handshake: protocol version, config hash, tokenizer hash),
/// sends each step's work orders, sums the returned gradient buckets in rank order as they arrive,
/// applies the optimizer through `TrainingSession`, broadcasts the new weights, and keeps going
/// when workers die or join.
public actor Coordinator {
    struct Peer { let id: PeerID; let rank: Int; let name: String; var lastHeard: Double }

    public let options: CoordinatorOptions
    let session: TrainingSession
    let socket: SocketThread
    /// The CURVE ZAP handler and handshake log guarding `socket` (stopped after it).
    let curveGuard: CurveServerGuard?
    let plan: BucketPlan
    let reducer: GradientReducer
    private let scratch = FloatBuffer()
    private var peers: [PeerID: Peer] = [:]
    private var nextRank = 0
    private var currentStep = 0, group = 0, allFinite = true
    private var waiter: CheckedContinuation<Void, Never>?
    private var failure: String?
    private var reduceSeconds = 0.0
    /// When each rank's step statistics (sent after its last gradient bucket) arrived, in seconds
    /// since the work orders went out: shows a straggler in metrics.jsonl (`worker_seconds`, an
    /// object keyed by rank, so a dropped rank does not shift the others).
    private var rankSeconds: [Int: Double] = [:]
    private var attemptStart = 0.0
    /// Payload bytes of the gradient buckets taken in the current step (headers excluded).
    private var gradientPayloadBytes = 0
    /// Payload bytes of weight buckets sent (broadcasts and admissions), summed over peers.
    private var weightPayloadBytes = 0
    /// How weights travel (`training.float16.parameters`): Float16 halves the broadcast.
    private let weightType: TensorElementType

    /// The dynamic loss scale (Float16 gradients) as it stands after the last step.
    public var lossScale: LossScaleState { session.lossScale }

    /// The endpoint as bound (a `tcp://...:*` wildcard resolved to its port).
    public nonisolated var endpoint: String { socket.endpoint }

    public init(config: RunConfig, run: RunOptions, options: CoordinatorOptions, context: ZMQContext? = nil) throws {
        session = try TrainingSession(config: config, options: run)
        let log: @Sendable (String) -> Void = { [quiet = !run.printProgress] in if !quiet { printLine($0) } }
        (socket, curveGuard) = try CoordinatorSocket.bind(options.bind, curve: options.curve, context: context, log: log)
        plan = BucketPlan(elementCount: session.parameterCount)
        reducer = GradientReducer(count: plan.elementCount, bucketElements: plan.elementsPerBucket)
        weightType = config.training.float16.parameters ? .float16 : .float32
        self.options = options
    }

    private func say(_ s: String) { session.say(s) }

    // MARK: - Waiting

    private var waitGeneration = 0

    private func wake() { waiter?.resume(); waiter = nil }

    /// Suspends until an event changes state or `timeout` passes. The timer wakes only the wait
    /// that armed it, and only if its sleep ran to the end (a cancelled timer must not wake the
    /// next wait: that would spin).
    private func waitForChange(timeout: Double) async {
        waitGeneration += 1
        let generation = waitGeneration
        let timer = Task {
            do { try await Task.sleep(nanoseconds: UInt64(timeout * 1e9)) } catch { return }
            if self.waitGeneration == generation { self.wake() }
        }
        await withCheckedContinuation { waiter = $0 }
        timer.cancel()
    }

    private var activeRanks: [Int] { peers.values.map(\.rank).sorted() }
    private func peer(rank: Int) -> PeerID? { peers.values.first { $0.rank == rank }?.id }

    // MARK: - Run

    /// Trains to the end (or a stop signal) and returns the summary.
    public func run() async throws -> RunSummary {
        let events = Task { await self.consumeEvents() }
        let heartbeats = Task { await self.heartbeatLoop() }
        defer { events.cancel(); heartbeats.cancel() }
        say("coordinator listening on \(socket.endpoint); waiting for \(options.workers) worker(s)")
        let joinDeadline = now() + options.joinTimeout
        while peers.count < options.workers {
            if let failure { throw CoordinatorError.transport(failure) }
            if now() > joinDeadline {
                throw CoordinatorError.notEnoughWorkers(joined: peers.count, wanted: options.workers, seconds: options.joinTimeout)
            }
            await waitForChange(timeout: 1)
        }
        session.begin(workers: options.workers)
        while !session.isFinished {
            try await runStep()
        }
        for p in peers.values { socket.send(.shutdown(reason: "training finished at step \(session.progress.step)"), to: p.id) }
        try? await Task.sleep(nanoseconds: 200_000_000)
        socket.stop(lingerMilliseconds: 500)
        curveGuard?.stop()
        return try session.finish(workers: options.workers)
    }

    /// One optimizer step; re-plans the same micro-batches over the survivors if a worker is lost.
    private func runStep() async throws {
        let microBatches = session.microBatchesPerStep(workers: options.workers)
        let start = now()
        let before = socket.statistics
        reduceSeconds = 0
        gradientPayloadBytes = 0
        var attempts = 0
        while true {
            if let failure { throw CoordinatorError.transport(failure) }
            var ranks = activeRanks
            let joinDeadline = now() + options.joinTimeout
            while ranks.isEmpty {
                say("no workers left; waiting for one to join")
                if now() > joinDeadline {
                    throw CoordinatorError.notEnoughWorkers(joined: 0, wanted: options.workers, seconds: options.joinTimeout)
                }
                await waitForChange(timeout: 1)
                ranks = activeRanks
            }
            group += 1
            attempts += 1
            currentStep = session.nextStep
            let stepPlan = StepPlan(step: currentStep, cursor: session.progress.dataCursor, microBatches: microBatches, ranks: ranks)
            reducer.begin(microBatches: stepPlan.assignments.mapValues(\.count))
            allFinite = true
            rankSeconds.removeAll()
            attemptStart = now()
            for (rank, indices) in stepPlan.assignments {
                guard let id = peer(rank: rank) else { continue }
                socket.send(.work(WorkOrder(step: currentStep, rank: rank, group: group,
                                            lossScale: session.gradientMultiplier(microBatches: microBatches),
                                            microBatches: indices)), to: id)
            }
            let deadline = now() + options.stepTimeout
            var lost = false
            while !reducer.isComplete {
                if stepPlan.ranks.contains(where: { peer(rank: $0) == nil }) { lost = true; break }
                if now() > deadline {
                    for r in reducer.missingRanks {
                        if let id = peer(rank: r) { drop(id, reason: "no gradient within the step deadline (\(Int(options.stepTimeout)) s)") }
                    }
                    lost = true
                    break
                }
                await waitForChange(timeout: 0.5)
            }
            if lost {
                say("step \(currentStep): re-planning its \(microBatches) micro-batches over the remaining workers")
                continue
            }
            break
        }
        let gathered = now()
        var stats = reducer.statistics
        if !allFinite { stats.lossSum = .nan }
        // Timings of this step go into its metrics line: compute (the slowest worker's compute plus
        // sending its gradient), the part of it spent reducing, AdamW, and the weight broadcast.
        let reduced = reduceSeconds
        try session.completeStep(gradients: reducer.total.pointer, statistics: stats, microBatches: microBatches,
                                 workers: activeRanks.count) {
            let applied = now()
            let weightBytesBefore = weightPayloadBytes
            sendWeights(to: Array(peers.keys))
            let sent = now()
            let after = socket.statistics
            return ["compute_seconds": gathered - start - reduced, "reduce_seconds": reduced,
                    "apply_seconds": applied - gathered, "broadcast_seconds": sent - applied,
                    "bytes_received": after.bytesReceived - before.bytesReceived,
                    "bytes_sent": after.bytesSent - before.bytesSent, "attempts": attempts,
                    "worker_seconds": Dictionary(uniqueKeysWithValues: rankSeconds.map { (String($0.key), $0.value) }),
                    "gradient_bytes_received": gradientPayloadBytes,
                    "weight_bytes_sent": weightPayloadBytes - weightBytesBefore]
        }
        // Validation and checkpoints run on this actor, which hears no heartbeat meanwhile: that
        // time is the coordinator's silence, not the workers', so it does not count against them.
        let resumed = now()
        for id in peers.keys { peers[id]?.lastHeard = resumed }
    }

    /// Sends the master weights to `ids` (every worker after a step, one joiner on admission), as
    /// Float32 or (with `float16.parameters`) their Float16 rounding; the master copy and AdamW's
    /// moments stay Float32 here. Each bucket is encoded once and the same frames go to every peer.
    private func sendWeights(to ids: [PeerID]) {
        let master = session.model.arena.values.pointer
        let step = session.progress.step
        for bucket in plan {
            let tensor = TensorBucket(step: step, bucket: bucket, of: plan, from: master, as: weightType)
            let frames = WireMessage.weights(tensor).frames()
            for id in ids { socket.send(frames, to: id) }
            weightPayloadBytes += tensor.payload.count * ids.count
        }
    }

    // MARK: - Events

    private func consumeEvents() async {
        for await event in socket.events {
            handle(event)
        }
    }

    private func handle(_ event: SocketEvent) {
        switch event {
        case .message(let m):
            guard let id = m.peer else { return }
            let message: WireMessage
            do { message = try m.decoded() } catch {
                // A worker of another protocol version cannot even be decoded: tell it why.
                socket.send(.refuse(reason: "\(error)"), to: id)
                say("refused a peer: \(error)")
                return
            }
            peers[id]?.lastHeard = now()
            switch message {
            case .hello(let h): admit(id, h)
            case .gradients(let b):
                guard let p = peers[id], b.step == currentStep, b.group == group, b.rank == p.rank else { return }
                let t0 = now()
                gradientPayloadBytes += b.payload.count
                b.withFloat32Values(scratch: scratch) { values in
                    if let base = values.baseAddress { reducer.receive(rank: p.rank, bucket: b.index, values: base) }
                }
                reduceSeconds += now() - t0
                wake()
            case .stepStats(let s):
                guard let p = peers[id], s.step == currentStep, s.group == group, s.rank == p.rank else { return }
                if !s.finite { allFinite = false }
                reducer.receiveStatistics(rank: p.rank, s.loss)
                rankSeconds[p.rank] = now() - attemptStart
                wake()
            case .heartbeat, .welcome, .refuse, .weights, .work, .shutdown: break
            }
        case .undeliverable(let peer, let error):
            if let peer { drop(peer, reason: "\(error)") }
        case .failed(let error):
            failure = "\(error)"
            wake()
        }
    }

    private func admit(_ id: PeerID, _ h: Hello) {
        let config = session.config
        if let theirs = h.configHash, theirs != config.configHash {
            let reason = "config hash differs: worker \(theirs), coordinator \(config.configHash) (start the worker without --config to use the coordinator's, or with the same file)"
            socket.send(.refuse(reason: reason), to: id)
            say("refused worker \(h.name): \(reason)")
            return
        }
        if let theirs = h.tokenizerHash, theirs != session.data.tokenizerHash {
            let reason = "tokenizer hash differs: worker \(theirs), coordinator \(session.data.tokenizerHash)"
            socket.send(.refuse(reason: reason), to: id)
            say("refused worker \(h.name): \(reason)")
            return
        }
        if peers[id] != nil { return }
        let rank = nextRank
        nextRank += 1
        peers[id] = Peer(id: id, rank: rank, name: h.name, lastHeard: now())
        socket.send(.welcome(Welcome(rank: rank, worldSize: options.workers, step: session.progress.step,
                                     dataCursor: session.progress.dataCursor,
                                     config: String(decoding: config.rawJSON, as: UTF8.self))), to: id)
        sendWeights(to: [id])
        say("worker \(h.name) joined as rank \(rank) (\(peers.count)/\(options.workers), \(h.threads) thread(s))")
        wake()
    }

    private func drop(_ id: PeerID, reason: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        socket.discardQueued(for: id)
        say("worker \(p.name) (rank \(p.rank)) dropped: \(reason)")
        wake()
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(options.heartbeatInterval * 1e9))
            let t = now()
            for p in peers.values {
                if t - p.lastHeard > options.heartbeatTimeout {
                    drop(p.id, reason: "silent for \(Int(t - p.lastHeard)) s")
                } else {
                    socket.send(.heartbeat(Heartbeat(step: currentStep, rank: p.rank, nanoseconds: DispatchTime.now().uptimeNanoseconds)), to: p.id)
                }
            }
        }
    }
}
