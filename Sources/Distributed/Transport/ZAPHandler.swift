/// The ZeroMQ authentication handler (ZAP, ZeroMQ RFC 27) of a CURVE server: admits a connecting
/// client only if its public key is in the allow list.
///
/// libzmq asks it about every CURVE handshake of every socket in the same context whose ZAP domain
/// is `domain`, over `inproc://zeromq.zap.01`; so it must be created in the ROUTER's context, before
/// the ROUTER binds, and stopped only after the ROUTER has closed (the ROUTER sets
/// ZMQ_ZAP_ENFORCE_DOMAIN, so while no handler answers, every client is refused, never admitted).
/// It answers on a thread of its own, so a handshake never waits for the coordinator's actor.
package final class ZAPHandler: Sendable {
    /// Where libzmq sends ZAP requests (fixed by RFC 27).
    package static let endpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain of the coordinator's ROUTER; requests for another domain are refused.
    package static let domain = "transformer"

    /// A handshake the handler refused.
    package struct Refusal: Sendable, Equatable {
        /// The client's public key (nil if the request was not CURVE, or malformed).
        package let publicKey: CurveKey?
        /// The client's address as libzmq reports it (the IP address of a tcp:// peer).
        package let address: String
        package let reason: String
    }

    private let thread: ServiceThread
    private let state: Locked<State>

    private struct State: Sendable {
        var refusals = 0
        var admissions = 0
        /// Keys already logged, so a refused worker that keeps reconnecting is logged once.
        var logged: Set<CurveKey> = []
    }

    /// Binds the handler in `context` and starts answering.
    ///
    /// - Parameter refused: called (on the handler's thread) the first time each unknown key is
    ///   refused, and for every malformed or non-CURVE request.
    package init(
        context: ZMQContext, allowed: CurveAllowList,
        refused: @escaping @Sendable (Refusal) -> Void
    ) throws(TransportError) {
        let state = Locked(State())
        self.state = state
        thread = try ServiceThread(
            .rep, context: context, name: "zmq-zap",
            setup: { socket throws(TransportError) in
                try socket.bind(ZAPHandler.endpoint)
            },
            handle: { message, socket in
                let (reply, refusal) = ZAPHandler.answer(message.frames.map(\.bytes), allowed: allowed)
                let firstTime = state.withLock { s -> Bool in
                    guard let refusal else {
                        s.admissions += 1
                        return false
                    }
                    s.refusals += 1
                    guard let key = refusal.publicKey else { return true }
                    return s.logged.insert(key).inserted
                }
                if let refusal, firstTime { refused(refusal) }
                // A REP socket must reply before it can receive again; if the reply cannot be sent
                // libzmq drops that handshake, which refuses the client too.
                _ = try? socket.send(reply.map { Frame($0) })
                return .keepGoing
            },
            failed: { error in
                refused(
                    Refusal(
                        publicKey: nil, address: "-",
                        reason: "the ZAP handler stopped (\(error)); no worker can join now"))
            })
    }

    deinit { stop() }

    /// Stops answering (call after the ROUTER it guards has closed).
    package func stop() { thread.stop() }

    /// Handshakes refused and admitted so far.
    package var counts: (refused: Int, admitted: Int) { state.withLock { ($0.refusals, $0.admissions) } }

    /// The reply to one ZAP request, and the refusal if it is one. Everything not exactly a
    /// well-formed CURVE request of our domain from a listed key is refused.
    package static func answer(_ frames: [[UInt8]], allowed: CurveAllowList) -> (reply: [[UInt8]], refusal: Refusal?) {
        let requestID = frames.count > 1 ? frames[1] : []
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        let text = { (i: Int) in i < frames.count ? String(decoding: frames[i], as: UTF8.self) : "" }
        let address = text(3).isEmpty ? "unknown address" : text(3)
        guard frames.count >= 6, text(0) == "1.0" else {
            let why = "malformed ZAP request (\(frames.count) frames, version \(text(0).debugDescription))"
            return (reply("500", why), Refusal(publicKey: nil, address: address, reason: why))
        }
        guard text(2) == domain else {
            let why = "ZAP domain \(text(2).debugDescription) is not \(domain.debugDescription)"
            return (reply("400", why), Refusal(publicKey: nil, address: address, reason: why))
        }
        guard text(5) == "CURVE", frames.count == 7, let key = CurveKey(bytes: frames[6]) else {
            let why = "mechanism \(text(5).debugDescription) is not CURVE with one 32-byte key"
            return (reply("400", why), Refusal(publicKey: nil, address: address, reason: why))
        }
        guard allowed.keys.contains(key) else {
            return (
                reply("400", "public key not allowed"),
                Refusal(publicKey: key, address: address, reason: "its public key is not in --allow-workers")
            )
        }
        // The user id (the Z85 key) is what libzmq attaches to the peer's messages as "User-Id".
        return (reply("200", "OK", user: key.z85), nil)
    }
}
