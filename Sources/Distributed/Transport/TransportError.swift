import CZMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a ZeroMQ operation failed, with the endpoint or option involved and the system's reason.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The ZeroMQ context (or the wake-up pipe of a socket thread) cannot be created.
    case setup(reason: String)
    /// A socket of this kind ("ROUTER", "DEALER", ...) cannot be created.
    case socket(kind: String, reason: String)
    /// A socket option cannot be set (`name` is the ZMQ_ constant's name).
    case option(name: String, reason: String)
    /// `endpoint` cannot be bound; `code` is the errno (e.g. `EADDRINUSE`).
    case bind(endpoint: String, code: Int32, reason: String)
    /// `endpoint` cannot be connected to; `code` is the errno (e.g. `EINVAL` for a malformed endpoint).
    case connect(endpoint: String, code: Int32, reason: String)
    /// A message cannot be sent.
    case send(reason: String)
    /// A message cannot be received.
    case receive(reason: String)
    /// Polling the sockets failed.
    case poll(reason: String)
    /// A ROUTER message names a peer that is not (or no longer) connected.
    case unreachable(peer: PeerID)
    /// A message was posted to a ROUTER socket without a destination peer.
    case missingPeer

    /// The message printed to the user.
    public var description: String {
        switch self {
        case .setup(let reason): return "cannot set up ZeroMQ: \(reason)"
        case .socket(let kind, let reason): return "cannot create a \(kind) socket: \(reason)"
        case .option(let name, let reason): return "cannot set socket option \(name): \(reason)"
        case .bind(let endpoint, _, let reason): return "cannot bind \(endpoint): \(reason)"
        case .connect(let endpoint, _, let reason): return "cannot connect to \(endpoint): \(reason)"
        case .send(let reason): return "cannot send: \(reason)"
        case .receive(let reason): return "cannot receive: \(reason)"
        case .poll(let reason): return "cannot poll: \(reason)"
        case .unreachable(let peer): return "peer \(peer) is not connected"
        case .missingPeer: return "a message to a ROUTER socket needs a destination peer"
        }
    }

    /// True when a bind failed because another socket (or process) holds the endpoint.
    public var isAddressInUse: Bool {
        if case .bind(_, let code, _) = self { return code == EADDRINUSE }
        return false
    }
}

/// The current ZeroMQ error number and its message.
func zmqLastError() -> (code: Int32, reason: String) {
    let code = zmq_errno()
    return (code, zmqErrorText(code))
}

func zmqErrorText(_ code: Int32) -> String {
    guard let text = zmq_strerror(code) else { return "error \(code)" }
    return String(cString: text)
}
