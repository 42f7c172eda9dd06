import Foundation
import Synchronization

/// The coordinator's CURVE settings (`--curve-secret FILE --allow-workers PATH`).
public struct CoordinatorCurve: Sendable, Equatable {
    /// The coordinator's identity (its public key goes to every worker as `--coordinator-public`).
    public var keyPair: CurveKeyPair
    /// The workers admitted (any other key is refused by the ZAP handler).
    public var allowedWorkers: CurveAllowList

    /// CURVE with `keyPair` admitting `allowedWorkers`.
    public init(keyPair: CurveKeyPair, allowedWorkers: CurveAllowList) {
        self.keyPair = keyPair
        self.allowedWorkers = allowedWorkers
    }

    /// Reads the secret key file and the allow list.
    public static func load(secretFile: String, allowWorkers: String) throws(CurveKeyError) -> CoordinatorCurve {
        CoordinatorCurve(
            keyPair: try CurveKeyPair.load(secretFile: secretFile),
            allowedWorkers: try CurveAllowList.load(allowWorkers))
    }
}

/// A worker's CURVE settings (`--curve-secret FILE --coordinator-public FILE`).
public struct WorkerCurve: Sendable, Equatable {
    /// The worker's identity (its public key must be in the coordinator's `--allow-workers`).
    public var keyPair: CurveKeyPair
    /// The coordinator's public key, so the worker knows whom it talks to.
    public var coordinatorPublicKey: CurveKey

    /// CURVE with `keyPair` towards the coordinator holding `coordinatorPublicKey`.
    public init(keyPair: CurveKeyPair, coordinatorPublicKey: CurveKey) {
        self.keyPair = keyPair
        self.coordinatorPublicKey = coordinatorPublicKey
    }

    /// Reads the worker's secret key file and the coordinator's public key file.
    public static func load(secretFile: String, coordinatorPublic: String) throws(CurveKeyError) -> WorkerCurve {
        WorkerCurve(
            keyPair: try CurveKeyPair.load(secretFile: secretFile),
            coordinatorPublicKey: try CurveKeyPair.load(publicFile: coordinatorPublic))
    }
}

/// What guards a CURVE ROUTER: its ZAP handler and a monitor that logs failed handshakes (both in
/// the socket's context, started before it binds). Stop it after the socket.
package final class CurveServerGuard: Sendable {
    package let zap: ZAPHandler
    private let monitor: HandshakeMonitor

    init(zap: ZAPHandler, monitor: HandshakeMonitor) {
        self.zap = zap
        self.monitor = monitor
    }

    package func stop() {
        monitor.stop()
        zap.stop()
    }
}

/// The coordinator's ROUTER and, with CURVE, what guards it.
package enum CoordinatorSocket {
    package static func bind(
        _ endpoint: String, options: SocketOptions = SocketOptions(), curve: CoordinatorCurve?,
        context: ZMQContext?, log: @escaping @Sendable (String) -> Void
    ) throws(TransportError)
        -> (socket: SocketThread, curveGuard: CurveServerGuard?)
    {
        guard let curve else {
            return (try SocketThread(.router(bind: endpoint), options: options, context: context), nil)
        }
        let shared = try sharedContext(context)
        let zap = try ZAPHandler(context: shared, allowed: curve.allowedWorkers) { refusal in
            if let key = refusal.publicKey {
                log(
                    "refused a worker at \(refusal.address) with CURVE public key \(key.z85): \(refusal.reason) (add its .public file there to admit it; further attempts with this key are refused silently)"
                )
            } else {
                log("refused a connection from \(refusal.address): \(refusal.reason)")
            }
        }
        // Handshakes that fail before ZAP (a client holding the wrong coordinator key, or none)
        // are logged once per kind: they name no key, and a misconfigured worker retries forever.
        let seen = Locked<Set<UInt32>>([])
        let monitorEndpoint = HandshakeMonitor.makeEndpoint("coordinator")
        let monitor = try HandshakeMonitor(context: shared, endpoint: monitorEndpoint) { event, _ in
            guard case .protocolError(let code) = event, seen.withLock({ $0.insert(code).inserted }) else { return }
            log(
                "a peer failed the CURVE handshake: \(HandshakeEvent.explain(code)) (a worker needs --curve-secret and this coordinator's .public as --coordinator-public; further failures of this kind are not logged)"
            )
        }
        var secured = options
        secured.curve = .server(curve.keyPair)
        secured.monitorEndpoint = monitorEndpoint
        do {
            let socket = try SocketThread(.router(bind: endpoint), options: secured, context: shared)
            return (socket, CurveServerGuard(zap: zap, monitor: monitor))
        } catch {
            monitor.stop()
            zap.stop()
            throw error
        }
    }
}

/// A worker's DEALER with a monitor that turns handshake failures into a `WorkerError` and ends
/// the connection (instead of a worker waiting silently for a coordinator that will never talk to
/// it): a refused CURVE key, a wrong coordinator key, CURVE on one side only. `inproc://`
/// connections have no handshake and no monitor.
package final class WorkerLink: Sendable {
    package let socket: SocketThread
    private let monitor: HandshakeMonitor?
    private let verdict: Verdict

    /// Consecutive handshakes that ended without detail before the worker gives up: a server that
    /// cannot open our HELLO (wrong --coordinator-public) just closes the connection, as does a
    /// coordinator that restarts mid-handshake, hence more than one.
    static let silentFailuresAllowed = 3

    package init(
        endpoint: String, routingID: PeerID, options: SocketOptions = SocketOptions(), curve: WorkerCurve?,
        context: ZMQContext?
    ) throws(TransportError) {
        if endpoint.hasPrefix("inproc://") {
            socket = try SocketThread(
                .dealer(connect: endpoint, routingID: routingID), options: options, context: context)
            monitor = nil
            verdict = Verdict(curve: curve, endpoint: endpoint)
            return
        }
        let shared = try sharedContext(context)
        let verdict = Verdict(curve: curve, endpoint: endpoint)
        let monitorEndpoint = HandshakeMonitor.makeEndpoint("worker")
        let monitor = try HandshakeMonitor(context: shared, endpoint: monitorEndpoint) { event, _ in
            verdict.observe(event)
        }
        var secured = options
        if let curve { secured.curve = .client(curve.keyPair, serverPublicKey: curve.coordinatorPublicKey) }
        secured.monitorEndpoint = monitorEndpoint
        let socket: SocketThread
        do {
            socket = try SocketThread(
                .dealer(connect: endpoint, routingID: routingID), options: secured, context: shared)
        } catch {
            monitor.stop()
            throw error
        }
        verdict.watch(socket)
        self.socket = socket
        self.monitor = monitor
        self.verdict = verdict
    }

    /// Closes the socket, then the monitor.
    package func close() {
        socket.stop()
        monitor?.stop()
    }

    /// Throws the handshake failure that ended the connection, if one did.
    package func checkHandshake() throws(WorkerError) {
        if let failure = verdict.failure { throw failure }
    }

    /// Decides from the handshake events whether the worker can ever join; stops the socket when not.
    private final class Verdict: Sendable {
        private struct State {
            var socket: SocketThread?
            var failure: WorkerError?
            var silentFailures = 0
        }
        private let state = Mutex(State())
        private let curve: WorkerCurve?
        private let endpoint: String

        init(curve: WorkerCurve?, endpoint: String) {
            self.curve = curve
            self.endpoint = endpoint
        }

        var failure: WorkerError? { state.withLock { $0.failure } }

        func watch(_ socket: SocketThread) {
            let failed = state.withLock { s in
                s.socket = socket
                return s.failure != nil
            }
            if failed { socket.stop() }
        }

        func observe(_ event: HandshakeEvent) {
            let key = curve?.keyPair.publicKey.z85 ?? "-"
            let stop: SocketThread? = state.withLock { s in
                guard s.failure == nil else { return nil }
                switch event {
                case .succeeded:
                    s.silentFailures = 0
                    return nil
                case .refused(let status):
                    s.failure = .curveKeyRefused(publicKey: key, status: status)
                case .protocolError where event.isMechanismMismatch && curve == nil:
                    s.failure = .curveHandshakeFailed(
                        endpoint: endpoint,
                        reason:
                            "the coordinator requires CURVE: start this worker with --curve-secret FILE --coordinator-public FILE (`transformer keygen` makes the pair; the coordinator's operator adds the .public file to its --allow-workers)"
                    )
                case .protocolError where event.isMechanismMismatch:
                    s.failure = .curveHandshakeFailed(
                        endpoint: endpoint,
                        reason:
                            "the coordinator does not use CURVE (start it with --curve-secret and --allow-workers, or start this worker without --curve-secret)"
                    )
                case .protocolError(let code):
                    s.failure = .curveHandshakeFailed(
                        endpoint: endpoint,
                        reason:
                            "protocol error 0x\(String(code, radix: 16)): is --coordinator-public the coordinator's key?"
                    )
                case .failedWithoutDetail:
                    // libzmq reports a wrong server key this way, and sometimes a server without
                    // CURVE too, so the reason names both. Without CURVE there is no key to blame: a coordinator that dies mid-handshake
                    // is one the worker waits for and rejoins.
                    guard curve != nil else { return nil }
                    s.silentFailures += 1
                    guard s.silentFailures >= WorkerLink.silentFailuresAllowed else { return nil }
                    s.failure = .curveHandshakeFailed(
                        endpoint: endpoint,
                        reason:
                            "the coordinator closed the connection during \(s.silentFailures) handshakes in a row: is --coordinator-public the coordinator's key? (or the coordinator does not use CURVE: libzmq does not always say which)"
                    )
                case .disconnected, .monitorStopped, .other:
                    return nil
                }
                return s.socket
            }
            // Stopping ends the worker's event loop, which then throws `failure`.
            stop?.stop()
        }
    }
}

/// `context`, or a new one (`try context ?? ZMQContext()` would lose the error type).
private func sharedContext(_ context: ZMQContext?) throws(TransportError) -> ZMQContext {
    if let context { return context }
    return try ZMQContext()
}

/// The rule that a coordinator reachable from other hosts must use CURVE.
package enum BindSecurity {
    /// True for endpoints only this host can reach: ipc://, inproc://, and tcp:// on 127.0.0.0/8,
    /// ::1 or localhost. `tcp://0.0.0.0:P`, `tcp://*:P`, an interface name or any other address
    /// is reachable from the network.
    package static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst("tcp://".count))
        // tcp://SOURCE;HOST:PORT names a source address for connects; a bind has none, but be strict.
        if host.contains(";") { return false }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4,
            parts.allSatisfy({
                !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0).map { $0 <= 255 } == true
            })
        else { return false }
        return parts[0] == "127"
    }

    /// Throws unless `endpoint` is local, CURVE is on, or the user said `--insecure`.
    package static func check(bind endpoint: String, curve: Bool, insecure: Bool) throws(BindSecurityError) {
        if curve || insecure || isLocal(endpoint) { return }
        throw .insecure(endpoint: endpoint)
    }
}

package enum BindSecurityError: Error, Equatable, CustomStringConvertible {
    case insecure(endpoint: String)

    package var description: String {
        switch self {
        case .insecure(let e):
            return
                "refusing to bind \(e) without CURVE: anyone who reaches it could join, read the weights and write gradients. "
                + "Create keys with `transformer keygen --output keys/coordinator` (and one per worker), then start the coordinator with "
                + "--curve-secret keys/coordinator.secret --allow-workers DIR_OF_WORKER_PUBLIC_KEYS and each worker with "
                + "--curve-secret keys/NAME.secret --coordinator-public keys/coordinator.public; "
                + "or bind a loopback address (tcp://127.0.0.1:PORT), or pass --insecure on a network you trust"
        }
    }
}
