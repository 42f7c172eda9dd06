import Foundation
import TensorCore
import Training
import TransformerModel

/// Network and liveness settings of the coordinator.
public struct CoordinatorOptions: Sendable {
    /// The ZeroMQ endpoint to bind (`tcp://HOST:PORT`, `inproc://NAME` in one process).
    public var bind: String
    /// Workers to wait for before the first step; each step uses `accumulation_steps x workers`
    /// micro-batches whatever happens to individual workers, so a failure never changes the math.
    public var workers: Int
    /// Seconds to wait for `workers` workers before the first step; then the run fails.
    public var joinTimeout: Double = 600
    /// Seconds between heartbeats, sent by the socket thread (they flow while this actor validates).
    public var heartbeatInterval: Double = 1
    /// A worker silent this long (as the socket thread hears it) is dropped.
    public var heartbeatTimeout: Double = 10
    /// A step not finished this long after its work orders drops the workers still missing.
    public var stepTimeout: Double = 600
    /// Workers that join while the run has its `workers` wait as spares (kept alive, no rank) and
    /// take the place of the next lost worker; beyond this many, a joiner is refused.
    public var maxSpares: Int
    /// Test hook: blocks this actor for that long at every validation, as a slow one would.
    package var extraValidationSeconds = 0.0
    /// Test hook: before this step, wait until `workers` workers are in (a joiner then takes
    /// part from exactly this step on).
    package var waitForFullClusterBeforeStep: Int?
    /// CURVE keys and the admitted workers' public keys; nil accepts any peer, unencrypted.
    public var curve: CoordinatorCurve?

    /// Defaults for everything but the endpoint and the number of workers.
    public init(bind: String, workers: Int) {
        self.bind = bind
        self.workers = workers
        maxSpares = Swift.max(1, workers)
    }
}

/// Why a coordinator could not run.
public enum CoordinatorError: Error, CustomStringConvertible {
    /// Fewer than `workers` workers joined within the join timeout.
    case notEnoughWorkers(joined: Int, wanted: Int, seconds: Double)
    /// The socket failed, or `--spawn-local` cannot start its workers.
    case transport(String)

    /// The message printed to the user.
    public var description: String {
        switch self {
        case let .notEnoughWorkers(j, w, s):
            return
                "only \(j) of \(w) workers joined within \(Int(s)) s (start them with `worker --coordinator ENDPOINT`)"
        case .transport(let m): return "transport failure: \(m)"
        }
    }
}

/// The coordinator: admits workers (handshake: protocol version, config hash, tokenizer hash),
/// sends each step's work orders, sums the returned gradient buckets in rank order as they arrive,
/// applies the optimizer through `TrainingSession`, broadcasts the new weights, and keeps going
/// when workers die or join.
public actor Coordinator {
    struct Peer {
        let id: PeerID
        let rank: Int
        let name: String
        let threads: Int
    }
    struct Spare {
        let id: PeerID
        let hello: Hello
    }

    /// The network and liveness settings it was started with.
    public let options: CoordinatorOptions
    let session: TrainingSession
    let socket: SocketThread
    /// The CURVE ZAP handler and handshake log guarding `socket` (stopped after it).
    let curveGuard: CurveServerGuard?
    let plan: BucketPlan
    let reducer: GradientReducer
    let scratch = FloatBuffer()
    var peers: [PeerID: Peer] = [:]
    var spares: [Spare] = []
    /// Peers dropped but perhaps still connected (a hung or slow worker), newest last, at most 64:
    /// told at the end that the run is over, so they exit instead of trying to rejoin.
    var dropped: [PeerID] = []
    var nextRank = 0
    /// The step being computed and its attempt (re-plans count up); messages of others are stale.
    var currentStep = 0, attempt = 0, allFinite = true
    /// Set once the run is over: workers that leave now are not "dropped".
    var finishing = false
    private var waiter: CheckedContinuation<Void, Never>?
    var failure: String?
    var reduceSeconds = 0.0
    /// The validation the workers are computing (nil between validations).
    var validation: ValidationRound?
    /// Validation units computed so far, by the rank that computed them (-1: this coordinator).
    package var validationUnitsByRank: [Int: Int] = [:]
    /// Rate limit for lines about peers that are not in the run (they can send without end).
    var strangerLines = LineLimiter(interval: 10)
    /// When each rank's step statistics (sent after its last gradient bucket) arrived, in seconds
    /// since the work orders went out: shows a straggler in metrics.jsonl (`worker_seconds`, an
    /// object keyed by rank, so a dropped rank does not shift the others).
    var rankSeconds: [Int: Double] = [:]
    var attemptStart = 0.0
    /// Payload bytes of the gradient buckets taken in the current step (headers excluded).
    var gradientPayloadBytes = 0
    /// Payload bytes of weight buckets sent (broadcasts and admissions), summed over peers.
    var weightPayloadBytes = 0
    /// How weights travel (`training.float16.parameters`): Float16 halves the broadcast.
    let weightType: TensorElementType
    /// How gradients must arrive (`training.float16.gradients`); a bucket of the other type is refused.
    let gradientType: TensorElementType

    /// The dynamic loss scale (Float16 gradients) as it stands after the last step.
    package var lossScale: LossScaleState { session.lossScale }

    /// The endpoint as bound (a `tcp://...:*` wildcard resolved to its port).
    public nonisolated var endpoint: String { socket.endpoint }

    /// Sets up (or resumes) the run and binds `options.bind`; `context` is shared with in-process
    /// workers for `inproc://` endpoints (nil: a context of its own). Call `run()` to train.
    public init(config: RunConfig, run: RunOptions, options: CoordinatorOptions, context: ZMQContext? = nil) throws {
        session = try TrainingSession(config: config, options: run)
        var socketOptions = SocketOptions()
        socketOptions.heartbeatInterval = options.heartbeatInterval
        socketOptions.maxMessageBytes = BucketPlan.maxFrameBytes
        let log: @Sendable (String) -> Void = { [quiet = !run.printProgress] in if !quiet { printLine($0) } }
        (socket, curveGuard) = try CoordinatorSocket.bind(
            options.bind, options: socketOptions, curve: options.curve,
            context: context, log: log)
        plan = BucketPlan(elementCount: session.parameterCount)
        reducer = GradientReducer(count: plan.elementCount, bucketElements: plan.elementsPerBucket)
        weightType = config.training.float16.parameters ? .float16 : .float32
        gradientType = config.training.float16.gradients ? .float16 : .float32
        self.options = options
    }

    func say(_ s: String) { session.say(s) }

    // MARK: - Waiting

    private var waitGeneration = 0

    func wake() {
        waiter?.resume()
        waiter = nil
    }

    /// Suspends until an event changes state or `timeout` passes. The timer wakes only the wait
    /// that armed it, and only if its sleep ran to the end (a cancelled timer must not wake the
    /// next wait: that would spin).
    func waitForChange(timeout: Double) async {
        waitGeneration += 1
        let generation = waitGeneration
        let timer = Task {
            do { try await Task.sleep(nanoseconds: UInt64(timeout * 1e9)) } catch { return }
            if self.waitGeneration == generation { self.wake() }
        }
        await withCheckedContinuation { waiter = $0 }
        timer.cancel()
    }

    var activeRanks: [Int] { peers.values.map(\.rank).sorted() }
    func peer(rank: Int) -> PeerID? { peers.values.first { $0.rank == rank }?.id }

    // MARK: - Run

    /// Trains to the end (or a stop signal) and returns the summary.
    public func run() async throws -> RunSummary {
        let events = Task { await self.consumeEvents() }
        let liveness = Task { await self.livenessLoop() }
        defer {
            events.cancel()
            liveness.cancel()
        }
        say("coordinator listening on \(socket.endpoint); waiting for \(options.workers) worker(s)")
        try await waitForWorkers { self.peers.count >= self.options.workers || StopSignal.isRequested }
        session.begin(workers: options.workers)
        if StopSignal.isRequested { try session.stopAtCompletedStep(workers: options.workers) }
        while !session.isFinished {
            try await runStep()
        }
        // Workers leave now: their going is the end of the run, not a failure (and a worker that
        // joins from now on is told the run is over, see `admit`).
        finishing = true
        session.closeStatusLine()
        let reason = "training finished at step \(session.progress.step)"
        for id in Array(peers.keys) + spares.map(\.id) + dropped {
            socket.stopKeepingAlive(id)
            socket.send(.shutdown(reason: reason), to: id)
        }
        try? await Task.sleep(nanoseconds: 200_000_000)
        socket.stop(lingerMilliseconds: 500)
        curveGuard?.stop()
        return try session.finish(workers: options.workers)
    }

    /// Waits until `ready` holds, for at most the join timeout, saying what it waits for once and
    /// then how long it has waited every 30 s (not a line a second).
    private func waitForWorkers(_ ready: () -> Bool) async throws {
        let start = now()
        var nextReport = start + 30
        while !ready() {
            if let failure { throw CoordinatorError.transport(failure) }
            let t = now()
            if t - start > options.joinTimeout {
                throw CoordinatorError.notEnoughWorkers(
                    joined: peers.count, wanted: options.workers, seconds: options.joinTimeout)
            }
            if t >= nextReport {
                say(
                    "still waiting for workers after \(Int(t - start)) s (\(peers.count)/\(options.workers) joined; "
                        + "giving up after \(Int(options.joinTimeout)) s)")
                nextReport += 30
            }
            await waitForChange(timeout: 1)
        }
    }

    /// One optimizer step, top to bottom: gather the step's gradient from the workers (re-planning
    /// the same micro-batches over the survivors if a worker is lost), apply it and broadcast the
    /// new weights, validate on the workers when due, then log, checkpoint and report.
    private func runStep() async throws {
        let microBatches = session.microBatchesPerStep(workers: options.workers)
        let start = now()
        let before = socket.statistics
        guard let attempts = try await gatherGradients(microBatches: microBatches) else { return }
        let gathered = now()
        let applied = applyGradients(
            microBatches: microBatches, attempts: attempts, start: start, gathered: gathered,
            socketBefore: before)
        var validated: (parts: [ValidationPart], seconds: Double)?
        if let work = applied.validation {
            let t0 = now()
            if options.extraValidationSeconds > 0 { blockThread(seconds: options.extraValidationSeconds) }
            validated = (try await validateOnWorkers(work, step: applied.step), now() - t0)
        }
        try session.finishStep(applied, validation: validated)
    }

    /// Dispatches the next step's micro-batches and waits until the reducer holds all their
    /// gradients; a lost worker or a missed deadline starts a new attempt over the workers left.
    /// Returns the number of attempts, or nil when a stop request ended the run at the last
    /// completed step instead.
    private func gatherGradients(microBatches: Int) async throws -> Int? {
        reduceSeconds = 0
        gradientPayloadBytes = 0
        var attempts = 0
        while true {
            if let failure { throw CoordinatorError.transport(failure) }
            // A stop request this step cannot honour (it lost workers, or has none) ends the run at
            // the last completed step instead of re-planning or waiting for new workers.
            if StopSignal.isRequested && (attempts > 0 || activeRanks.isEmpty) {
                try endAtCompletedStep()
                return nil
            }
            if session.nextStep == options.waitForFullClusterBeforeStep {
                try await waitForWorkers { self.peers.count >= self.options.workers }
            }
            if activeRanks.isEmpty {
                say("step \(session.nextStep): no workers left; waiting for one to join")
                try await waitForWorkers { !self.activeRanks.isEmpty || StopSignal.isRequested }
                if StopSignal.isRequested {
                    try endAtCompletedStep()
                    return nil
                }
            }
            attempts += 1
            let stepPlan = dispatch(microBatches: microBatches)
            if await waitForGradients(of: stepPlan) { return attempts }
            say("step \(currentStep): re-planning its \(microBatches) micro-batches over the remaining workers")
        }
    }

    /// Starts a new attempt of the next step over the active ranks: plans which rank computes
    /// which micro-batches, readies the reducer for them and sends each rank its work order.
    private func dispatch(microBatches: Int) -> StepPlan {
        let ranks = activeRanks
        attempt += 1
        currentStep = session.nextStep
        let stepPlan = StepPlan(
            step: currentStep, cursor: session.progress.dataCursor, microBatches: microBatches, ranks: ranks)
        reducer.begin(positions: stepPlan.positions)
        allFinite = true
        rankSeconds.removeAll()
        attemptStart = now()
        for (rank, indices) in stepPlan.assignments {
            guard let id = peer(rank: rank) else { continue }
            socket.send(
                .work(
                    WorkOrder(
                        step: currentStep, rank: rank, attempt: attempt,
                        gradientMultiplier: session.gradientMultiplier(microBatches: microBatches),
                        firstPosition: stepPlan.positions[rank]?.lowerBound ?? 0,
                        microBatches: indices)), to: id)
        }
        return stepPlan
    }

    /// True once every rank's gradient of this attempt is in; false as soon as a rank of
    /// `stepPlan` is lost or the step deadline passes (the ranks still missing are dropped).
    private func waitForGradients(of stepPlan: StepPlan) async -> Bool {
        let deadline = now() + options.stepTimeout
        while !reducer.isComplete {
            if stepPlan.ranks.contains(where: { peer(rank: $0) == nil }) { return false }
            if now() > deadline {
                for r in reducer.missingRanks {
                    if let id = peer(rank: r) {
                        drop(id, reason: "no gradient within the step deadline (\(Int(options.stepTimeout)) s)")
                    }
                }
                return false
            }
            await waitForChange(timeout: 0.5)
        }
        return true
    }

    /// Applies the gathered gradient (AdamW through `TrainingSession.applyStep`) and broadcasts the
    /// new weights from inside it, so that the step's metrics line carries the step's timings and
    /// byte counts since `start`.
    private func applyGradients(
        microBatches: Int, attempts: Int, start: Double, gathered: Double,
        socketBefore before: SocketThread.Statistics
    ) -> AppliedStep {
        var stats = reducer.statistics
        if !allFinite { stats.lossSum = .nan }
        // Timings of this step go into its metrics line: compute (the slowest worker's compute plus
        // sending its gradient), the part of it spent reducing, AdamW, and the weight broadcast.
        let reduced = reduceSeconds
        session.workerStatus = peers.values.sorted { $0.rank < $1.rank }.map { p in
            WorkerStatus(
                rank: p.rank, name: p.name, threads: p.threads, lastStepSeconds: rankSeconds[p.rank],
                secondsSinceHeard: socket.secondsSinceHeard(p.id))
        }
        return session.applyStep(
            gradients: reducer.total.pointer, statistics: stats, microBatches: microBatches,
            workers: activeRanks.count
        ) {
            let applied = now()
            let weightBytesBefore = weightPayloadBytes
            sendWeights(to: Array(peers.keys))
            let sent = now()
            let after = socket.statistics
            return [
                "compute_seconds": gathered - start - reduced, "reduce_seconds": reduced,
                "apply_seconds": applied - gathered, "broadcast_seconds": sent - applied,
                "bytes_received": after.bytesReceived - before.bytesReceived,
                "bytes_sent": after.bytesSent - before.bytesSent, "attempts": attempts,
                "worker_seconds": Dictionary(uniqueKeysWithValues: rankSeconds.map { (String($0.key), $0.value) }),
                "gradient_bytes_received": gradientPayloadBytes,
                "weight_bytes_sent": weightPayloadBytes - weightBytesBefore,
            ]
        }
    }

    /// Holds this actor's thread as a long validation would (not a suspension: nothing else of
    /// the actor runs meanwhile), for the liveness test.
    private nonisolated func blockThread(seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

    private func endAtCompletedStep() throws {
        say(
            "step \(session.nextStep): stop requested and its workers are gone; ending at step \(session.progress.step)"
        )
        try session.stopAtCompletedStep(workers: options.workers)
    }

    /// Sends the master weights to `ids` (every worker after a step, one joiner on admission), as
    /// Float32 or (with `float16.parameters`) their Float16 rounding; the master copy and AdamW's
    /// moments stay Float32 here. Each bucket is encoded once and the same frames go to every peer.
    func sendWeights(to ids: [PeerID]) {
        let master = session.model.arena.values.pointer
        let step = session.progress.step
        for bucket in plan {
            let tensor = TensorBucket(step: step, bucket: bucket, of: plan, from: master, as: weightType)
            let frames = WireMessage.weights(tensor).frames()
            for id in ids { socket.send(frames, to: id) }
            weightPayloadBytes += tensor.payload.count * ids.count
        }
    }
}
