import Foundation
import TensorCore
import Training

/// What the coordinator does with each message it receives, and how peers join, wait and leave.
///
/// Nothing a peer sends is trusted: every message is checked against the coordinator's own plan
/// (step, attempt, rank, bucket geometry, element type, payload size) before a byte of it is read.
/// A worker that breaks the protocol is refused, dropped and logged with the reason, and its step
/// is re-planned over the others, so nothing it sent reaches the model.
extension Coordinator {
    // MARK: - Events

    func consumeEvents() async {
        for await event in socket.events {
            handle(event)
        }
    }

    func handle(_ event: SocketEvent) {
        switch event {
        case .message(let m):
            guard let id = m.peer else { return }
            let message: WireMessage
            do { message = try m.decoded() } catch {
                if peers[id] != nil || spares.contains(where: { $0.id == id }) {
                    violation(by: id, "sent a malformed message: \(error)")
                    return
                }
                // A worker of another protocol version cannot even be decoded: tell it why.
                socket.send(.refuse(reason: "\(error)"), to: id)
                if strangerLines.allow(now()) {
                    say("refused a peer (\(Self.printable(id.description))): \(error)\(strangerLines.suppressedNote)")
                }
                return
            }
            switch message {
            case .hello(let h): admit(id, h)
            case .gradients(let b): receiveGradients(b, from: id)
            case .stepStats(let s): receiveStatistics(s, from: id)
            case .validationPart(let v): receiveValidationPart(v, from: id)
            case .heartbeat: break
            case .welcome, .refuse, .weights, .work, .validate, .shutdown:
                if peers[id] != nil {
                    violation(by: id, "sent a \(message.kind) message, which only a coordinator sends")
                }
            }
        case .undeliverable(let peer, let error):
            guard let peer else { return }
            if let i = spares.firstIndex(where: { $0.id == peer }) {
                socket.stopKeepingAlive(peer)
                spares.remove(at: i)
            }
            if !finishing { drop(peer, reason: "\(error)") }
        case .failed(let error):
            failure = "\(error)"
            wake()
        }
    }

    /// A gradient bucket: taken only from a ranked peer, for the current step and attempt, for its
    /// own rank, shaped exactly like the coordinator's bucket of that index. Stale ones (another
    /// step or attempt) and second copies are ignored; anything else is a protocol violation.
    private func receiveGradients(_ b: TensorBucket, from id: PeerID) {
        guard let p = peers[id], b.step == currentStep, b.attempt == attempt else { return }
        guard b.rank == p.rank else {
            return violation(by: id, "sent gradients as rank \(b.rank); it is rank \(p.rank)")
        }
        guard reducer.expects(rank: p.rank) else {
            return violation(by: id, "sent gradients for a step it has no part in")
        }
        guard let node = b.node, reducer.nodes(of: p.rank).contains(node) else {
            return violation(
                by: id,
                "sent the sum of tree node \(b.node.map(\.description) ?? "none"); it owes \(reducer.nodes(of: p.rank))"
            )
        }
        do { try plan.check(b, kind: .gradients, elementType: gradientType) } catch {
            return violation(by: id, "sent a bad gradient bucket: \(error)")
        }
        let t0 = now()
        let receipt = b.withFloat32Values(scratch: scratch) { values in
            reducer.receive(rank: p.rank, node: node, bucket: b.index, values: values)
        }
        if receipt == .taken { gradientPayloadBytes += b.payload.count }
        reduceSeconds += now() - t0
        wake()
    }

    /// A rank's loss sums, which its worker sends after its last bucket (earlier ones are ignored).
    private func receiveStatistics(_ s: StepStatistics, from id: PeerID) {
        guard let p = peers[id], s.step == currentStep, s.attempt == attempt else { return }
        guard s.rank == p.rank else {
            return violation(by: id, "sent step statistics as rank \(s.rank); it is rank \(p.rank)")
        }
        guard reducer.receiveStatistics(rank: p.rank, s.loss) else { return }
        if !s.finite { allFinite = false }
        rankSeconds[p.rank] = now() - attemptStart
        wake()
    }

    /// Refuses and drops a peer that broke the protocol (a broken worker then exits saying why,
    /// instead of rejoining and breaking the next step too).
    func violation(by id: PeerID, _ reason: String) {
        if let i = spares.firstIndex(where: { $0.id == id }) {
            socket.stopKeepingAlive(id)
            say("spare \(Self.printable(spares[i].hello.name)) refused: \(reason)")
            spares.remove(at: i)
        }
        drop(id, reason: "protocol violation: \(reason)")
        // After the drop, which discards what was still queued for it.
        socket.send(.refuse(reason: "protocol violation: \(reason)"), to: id)
    }

    // MARK: - Joining and leaving

    func admit(_ id: PeerID, _ h: Hello) {
        if peers[id] != nil || spares.contains(where: { $0.id == id }) { return }  // a repeated hello
        // A worker (re)joining while the run ends would wait for work that never comes, then give
        // up with an error: tell it the run is over.
        if finishing {
            socket.send(.shutdown(reason: "training finished at step \(session.progress.step)"), to: id)
            return
        }
        let name = Self.printable(h.name)
        let config = session.config
        if let theirs = h.configHash, theirs != config.configHash {
            let reason =
                "config hash differs: worker \(Self.printable(theirs)), coordinator \(config.configHash) (start the worker without --config to use the coordinator's, or with the same file)"
            socket.send(.refuse(reason: reason), to: id)
            say("refused worker \(name): \(reason)")
            return
        }
        if let theirs = h.tokenizerHash, theirs != session.data.tokenizerHash {
            let reason =
                "tokenizer hash differs: worker \(Self.printable(theirs)), coordinator \(session.data.tokenizerHash)"
            socket.send(.refuse(reason: reason), to: id)
            say("refused worker \(name): \(reason)")
            return
        }
        guard h.threads >= 1 else {
            socket.send(.refuse(reason: "hello says \(h.threads) threads"), to: id)
            return
        }
        if peers.count < options.workers {
            assignRank(id, h)
        } else if spares.count < options.maxSpares {
            spares.append(Spare(id: id, hello: h))
            socket.keepAlive(id, with: heartbeatFrames(rank: 0))
            say(
                "worker \(name) waits as a spare (the run has its \(options.workers) worker(s)); it takes the place of the next one lost"
            )
        } else {
            let reason =
                "the run has its \(options.workers) worker(s) and \(spares.count) spare(s) waiting; try again later"
            socket.send(.refuse(reason: reason), to: id)
            if strangerLines.allow(now()) { say("refused worker \(name): \(reason)\(strangerLines.suppressedNote)") }
        }
    }

    private func assignRank(_ id: PeerID, _ h: Hello) {
        let rank = nextRank
        nextRank += 1
        peers[id] = Peer(id: id, rank: rank, name: Self.printable(h.name), threads: h.threads)
        socket.keepAlive(id, with: heartbeatFrames(rank: rank))
        socket.send(
            .welcome(
                Welcome(
                    rank: rank, worldSize: options.workers, step: session.progress.step,
                    dataCursor: session.progress.dataCursor,
                    config: String(decoding: session.config.rawJSON, as: UTF8.self))), to: id)
        sendWeights(to: [id])
        say(
            "worker \(Self.printable(h.name)) joined as rank \(rank) (\(peers.count)/\(options.workers), \(h.threads) thread(s))"
        )
        wake()
    }

    private func heartbeatFrames(rank: Int) -> [Frame] {
        WireMessage.heartbeat(Heartbeat(step: 0, rank: rank, nanoseconds: 0)).frames()
    }

    func drop(_ id: PeerID, reason: String) {
        guard let p = peers.removeValue(forKey: id) else { return }
        socket.stopKeepingAlive(id)
        socket.discardQueued(for: id)
        dropped.append(id)
        if dropped.count > 64 { dropped.removeFirst() }
        say("worker \(p.name) (rank \(p.rank)) dropped: \(reason)")
        // A spare takes the place at once: welcomed with the current weights, it is in the
        // re-plan of the step that lost the worker.
        while peers.count < options.workers, !spares.isEmpty {
            let spare = spares.removeFirst()
            assignRank(spare.id, spare.hello)
        }
        wake()
    }

    /// Drops peers the socket thread has not heard from for `heartbeatTimeout`. The heartbeats
    /// themselves are sent by the socket thread, so a busy coordinator still sends them, and the
    /// times checked here are when messages arrived, not when this actor got round to them.
    func livenessLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(Swift.min(options.heartbeatInterval, 1) * 1e9))
            for p in peers.values {
                if let silent = socket.secondsSinceHeard(p.id), silent > options.heartbeatTimeout {
                    drop(p.id, reason: "silent for \(Int(silent)) s")
                }
            }
            spares.removeAll { spare in
                guard let silent = socket.secondsSinceHeard(spare.id), silent > options.heartbeatTimeout else {
                    return false
                }
                socket.stopKeepingAlive(spare.id)
                say("spare \(Self.printable(spare.hello.name)) gone: silent for \(Int(silent)) s")
                return true
            }
        }
    }

    /// A peer's name or hash for a log line: printable ASCII only, at most 64 characters (a peer
    /// must not be able to write control sequences or megabytes into the coordinator's log).
    static func printable(_ s: String) -> String {
        let clean = String(
            String.UnicodeScalarView(
                s.unicodeScalars.prefix(64).map {
                    $0.value >= 0x20 && $0.value < 0x7f ? $0 : "?"
                }))
        return s.unicodeScalars.count > 64 ? clean + "..." : clean
    }
}

/// Lets one line through per `interval` seconds and counts the ones it held back.
struct LineLimiter {
    let interval: Double
    private var last = -Double.infinity
    private var suppressed = 0
    private var suppressedSinceLast = 0

    init(interval: Double) { self.interval = interval }

    mutating func allow(_ t: Double) -> Bool {
        guard t - last >= interval else {
            suppressed += 1
            return false
        }
        last = t
        suppressedSinceLast = suppressed
        suppressed = 0
        return true
    }

    /// " (N similar lines held back)" after a line that was allowed, if any were.
    var suppressedNote: String { suppressedSinceLast > 0 ? " (\(suppressedSinceLast) similar line(s) held back)" : "" }
}
