import CZMQ
import Synchronization

/// What libzmq's socket monitor reports about a connection's security handshake.
///
/// CURVE failures are invisible at the socket level (a refused DEALER just never receives
/// anything), so these events are the only way a worker learns why it cannot join.
package enum HandshakeEvent: Sendable, Equatable {
    /// ZMQ_EVENT_HANDSHAKE_SUCCEEDED: the connection is authenticated and encrypted (or NULL).
    case succeeded
    /// ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: the server's ZAP handler refused us (status 400, ...).
    case refused(status: Int)
    /// ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: a ZMTP_/ZAP_ protocol error code (zmq.h).
    case protocolError(code: UInt32)
    /// ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: the connection closed during the handshake (a CURVE
    /// server that cannot open our HELLO, because we hold the wrong server key, just hangs up).
    case failedWithoutDetail(errno: Int32)
    /// ZMQ_EVENT_DISCONNECTED.
    case disconnected
    /// ZMQ_EVENT_MONITOR_STOPPED: the monitored socket closed; no more events.
    case monitorStopped
    /// Any other event (connected, retried, ...), by number.
    case other(UInt16)

    /// The mechanisms differ (CURVE against NULL): ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH.
    package var isMechanismMismatch: Bool {
        if case .protocolError(let code) = self { return code == UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) }
        return false
    }

    /// A ZMQ_PROTOCOL_ERROR_ code in words.
    package static func explain(_ code: UInt32) -> String {
        switch Int32(bitPattern: code) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: return "it does not use CURVE"
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return "its HELLO cannot be decrypted (it holds another coordinator public key)"
        default: return "protocol error 0x\(String(code, radix: 16))"
        }
    }

    /// Decodes one monitor message: a 6-byte frame (event number, then value, host byte order)
    /// and the endpoint. Nil for anything else.
    static func decode(_ frames: [Frame]) -> (event: HandshakeEvent, endpoint: String)? {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let bytes = frames[0].bytes
        let number = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        let endpoint = String(decoding: frames[1].bytes, as: UTF8.self)
        let event: HandshakeEvent
        switch Int32(number) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: event = .succeeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: event = .refused(status: Int(value))
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: event = .protocolError(code: value)
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: event = .failedWithoutDetail(errno: Int32(bitPattern: value))
        case ZMQ_EVENT_DISCONNECTED: event = .disconnected
        case ZMQ_EVENT_MONITOR_STOPPED: event = .monitorStopped
        default: event = .other(number)
        }
        return (event, endpoint)
    }
}

/// Reads a socket's monitor events (`SocketOptions.monitorEndpoint`) on a thread of its own and
/// hands each to `onEvent`.
///
/// Create it before the monitored socket: its PAIR socket connects to the `inproc://` endpoint
/// first (allowed for inproc since libzmq 4.0), so the monitor has a reader from its very first
/// event; libzmq drops events nobody is connected to read.
package final class HandshakeMonitor: Sendable {
    private let thread: ServiceThread

    /// A fresh endpoint name for one monitored socket (unique within the process).
    package static func makeEndpoint(_ label: String) -> String {
        "inproc://monitor-\(label)-\(counter.add(1, ordering: .relaxed).newValue)"
    }
    private static let counter = Atomic<Int>(0)

    package init(
        context: ZMQContext, endpoint: String,
        onEvent: @escaping @Sendable (HandshakeEvent, String) -> Void
    ) throws(TransportError) {
        thread = try ServiceThread(
            .pair, context: context, name: "zmq-monitor",
            setup: { socket throws(TransportError) in
                try socket.connect(endpoint)
            },
            handle: { message, _ in
                guard let (event, address) = HandshakeEvent.decode(message.frames) else { return .keepGoing }
                onEvent(event, address)
                return event == .monitorStopped ? .finish : .keepGoing
            }, failed: { _ in })
    }

    deinit { stop() }

    /// Stops reading (the monitored socket may stay open).
    package func stop() { thread.stop() }
}
