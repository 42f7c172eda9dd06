/// Socket options applied when a socket thread creates its socket.
///
/// LINGER is always 0 while running (closing never waits for unsent messages unless
/// `SocketThread.stop(lingerMilliseconds:)` asks for it).
package struct SocketOptions: Sendable, Equatable {
    /// Messages queued per peer before sends to that peer wait (ZMQ_SNDHWM; 0 = unlimited).
    /// A multipart message counts once. A full peer delays only its own messages.
    package var sendHighWaterMark = 1000
    /// Messages queued per peer on reception (ZMQ_RCVHWM; 0 = unlimited).
    package var receiveHighWaterMark = 1000
    /// ROUTER: report a message to an unknown peer as undeliverable instead of dropping it
    /// silently (ZMQ_ROUTER_MANDATORY).
    package var routerMandatory = true
    /// ROUTER: a new connection with the routing id of an existing one takes it over, so a
    /// restarted worker that reuses its id is not refused (ZMQ_ROUTER_HANDOVER).
    package var routerHandover = false
    /// TCP keepalive, so a peer whose host vanished is eventually detected by the kernel too.
    package var tcpKeepalive: TCPKeepalive? = TCPKeepalive()
    /// DEALER: queue messages only while connected (ZMQ_IMMEDIATE). Off (libzmq's default),
    /// messages sent while the ROUTER is away wait and are delivered when it comes back; on, they
    /// wait in the socket thread instead, retried every millisecond. Either way a protocol must not
    /// trust what a restarted coordinator receives before a fresh `hello`.
    package var immediate = false
    /// DEALER: first and maximum delay between reconnection attempts (ZMQ_RECONNECT_IVL, _MAX).
    package var reconnectIntervalMilliseconds = 100
    package var reconnectIntervalMaxMilliseconds = 2000
    /// Messages larger than this are refused by libzmq, which drops the connection
    /// (ZMQ_MAXMSGSIZE; nil = no limit).
    package var maxMessageBytes: Int? = nil
    /// Kernel socket buffer sizes (ZMQ_SNDBUF, ZMQ_RCVBUF; nil = the OS default).
    package var kernelSendBufferBytes: Int? = nil
    package var kernelReceiveBufferBytes: Int? = nil
    /// Seconds between heartbeats to kept-alive peers (`SocketThread.keepAlive`), sent by the socket
    /// thread itself, so they keep flowing while the owner computes (nil: the thread sends none).
    package var heartbeatInterval: Double? = nil
    /// Frames of at least this many bytes are handed to libzmq by reference instead of copied.
    package var zeroCopyMinimumBytes = 4096
    /// CurveZMQ authentication and encryption (nil: none, ZeroMQ's NULL mechanism).
    package var curve: CurveSecurity? = nil
    /// If set, libzmq publishes this socket's connection and handshake events on this `inproc://`
    /// endpoint (`zmq_socket_monitor`) for a `HandshakeMonitor` in the same context to read.
    /// Set before connecting, so no handshake goes unreported.
    package var monitorEndpoint: String? = nil

    package struct TCPKeepalive: Sendable, Equatable {
        package var idleSeconds = 10
        package var intervalSeconds = 5
        package var probes = 3
        package init(idleSeconds: Int = 10, intervalSeconds: Int = 5, probes: Int = 3) {
            self.idleSeconds = idleSeconds
            self.intervalSeconds = intervalSeconds
            self.probes = probes
        }
    }

    package init() {}
}

/// The CurveZMQ side a socket takes (ZeroMQ RFC 26). Every frame on a CURVE connection is
/// encrypted and authenticated; a server admits only the client keys its ZAP handler accepts.
package enum CurveSecurity: Sendable, Equatable {
    /// The coordinator's ROUTER: its own key pair. Connecting clients are authenticated by the ZAP
    /// handler that must be bound in the socket's context (`ZAPHandler`), checked for
    /// `ZAPHandler.domain`; with `ZMQ_ZAP_ENFORCE_DOMAIN` a missing handler refuses everyone
    /// instead of admitting everyone.
    case server(CurveKeyPair)
    /// A worker's DEALER: its own key pair and the server's public key (a client holding the wrong
    /// server key cannot complete the handshake: the server cannot read its HELLO).
    case client(CurveKeyPair, serverPublicKey: CurveKey)
}
