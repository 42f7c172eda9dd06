import CZMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One ZeroMQ socket: a thin wrapper that turns libzmq's return codes into `TransportError`s.
///
/// libzmq sockets are not thread-safe, and neither is this class (it is not `Sendable`): it is
/// owned by one thread, normally a `SocketThread`. All sends and receives are non-blocking unless
/// asked otherwise; `poll` is the only call that waits.
package final class ZMQSocket {
    package enum Kind: Sendable, CustomStringConvertible {
        case router, dealer, pair, rep

        var zmqType: Int32 {
            switch self {
            case .router: return ZMQ_ROUTER
            case .dealer: return ZMQ_DEALER
            case .pair: return ZMQ_PAIR
            case .rep: return ZMQ_REP
            }
        }

        package var description: String {
            switch self {
            case .router: return "ROUTER"
            case .dealer: return "DEALER"
            case .pair: return "PAIR"
            case .rep: return "REP"
            }
        }
    }

    /// What happened to a non-blocking send.
    package enum SendOutcome: Sendable, Equatable {
        case sent
        /// The peer's queue is full (high-water mark) or no peer is connected yet; retry later.
        case wouldBlock
        /// ROUTER with `routerMandatory`: the peer is not connected; the message was dropped.
        case unreachable
    }

    package let kind: Kind
    /// Kept so the context outlives its socket (terminating a context waits for its sockets).
    package let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?
    private var zeroCopyMinimumBytes = SocketOptions().zeroCopyMinimumBytes

    package init(_ kind: Kind, context: ZMQContext) throws(TransportError) {
        guard let handle = zmq_socket(context.handle, kind.zmqType) else {
            throw .socket(kind: kind.description, reason: zmqLastError().reason)
        }
        self.kind = kind
        self.context = context
        self.handle = handle
        try setOption(ZMQ_LINGER, 0, name: "ZMQ_LINGER")
    }

    deinit { close() }

    // MARK: Options

    package func setOption(_ option: Int32, _ value: Int32, name: String) throws(TransportError) {
        var v = value
        try setOption(option, pointer: &v, size: MemoryLayout<Int32>.size, name: name)
    }

    package func setOption(_ option: Int32, int64 value: Int64, name: String) throws(TransportError) {
        var v = value
        try setOption(option, pointer: &v, size: MemoryLayout<Int64>.size, name: name)
    }

    package func setOption(_ option: Int32, bytes: [UInt8], name: String) throws(TransportError) {
        var copy = bytes
        try setOption(option, pointer: &copy, size: bytes.count, name: name)
    }

    private func setOption(_ option: Int32, pointer: UnsafeRawPointer, size: Int, name: String) throws(TransportError) {
        guard let handle else { throw .option(name: name, reason: "the socket is closed") }
        if zmq_setsockopt(handle, option, pointer, size) != 0 {
            throw .option(name: name, reason: zmqLastError().reason)
        }
    }

    /// DEALER: the id the ROUTER will see (1...255 bytes, not starting with 0). Set before connecting.
    package func setRoutingID(_ id: PeerID) throws(TransportError) {
        // libzmq accepts a leading zero byte, but ROUTERs reserve those ids for the ones they make up.
        guard (1...255).contains(id.bytes.count), id.bytes[0] != 0 else {
            throw .option(
                name: "ZMQ_ROUTING_ID", reason: "a routing id needs 1 to 255 bytes and must not start with a zero byte")
        }
        try setOption(ZMQ_ROUTING_ID, bytes: id.bytes, name: "ZMQ_ROUTING_ID")
    }

    /// Applies `options` (the ROUTER-only ones only to a ROUTER).
    package func apply(_ options: SocketOptions) throws(TransportError) {
        try setOption(ZMQ_SNDHWM, Int32(clamping: options.sendHighWaterMark), name: "ZMQ_SNDHWM")
        try setOption(ZMQ_RCVHWM, Int32(clamping: options.receiveHighWaterMark), name: "ZMQ_RCVHWM")
        if kind == .router {
            try setOption(ZMQ_ROUTER_MANDATORY, options.routerMandatory ? 1 : 0, name: "ZMQ_ROUTER_MANDATORY")
            try setOption(ZMQ_ROUTER_HANDOVER, options.routerHandover ? 1 : 0, name: "ZMQ_ROUTER_HANDOVER")
        }
        if let keepalive = options.tcpKeepalive {
            try setOption(ZMQ_TCP_KEEPALIVE, 1, name: "ZMQ_TCP_KEEPALIVE")
            try setOption(
                ZMQ_TCP_KEEPALIVE_IDLE, Int32(clamping: keepalive.idleSeconds), name: "ZMQ_TCP_KEEPALIVE_IDLE")
            try setOption(
                ZMQ_TCP_KEEPALIVE_INTVL, Int32(clamping: keepalive.intervalSeconds), name: "ZMQ_TCP_KEEPALIVE_INTVL")
            try setOption(ZMQ_TCP_KEEPALIVE_CNT, Int32(clamping: keepalive.probes), name: "ZMQ_TCP_KEEPALIVE_CNT")
        }
        if kind != .router { try setOption(ZMQ_IMMEDIATE, options.immediate ? 1 : 0, name: "ZMQ_IMMEDIATE") }
        try setOption(
            ZMQ_RECONNECT_IVL, Int32(clamping: options.reconnectIntervalMilliseconds), name: "ZMQ_RECONNECT_IVL")
        try setOption(
            ZMQ_RECONNECT_IVL_MAX, Int32(clamping: options.reconnectIntervalMaxMilliseconds),
            name: "ZMQ_RECONNECT_IVL_MAX")
        if let limit = options.maxMessageBytes {
            try setOption(ZMQ_MAXMSGSIZE, int64: Int64(limit), name: "ZMQ_MAXMSGSIZE")
        }
        if let bytes = options.kernelSendBufferBytes {
            try setOption(ZMQ_SNDBUF, Int32(clamping: bytes), name: "ZMQ_SNDBUF")
        }
        if let bytes = options.kernelReceiveBufferBytes {
            try setOption(ZMQ_RCVBUF, Int32(clamping: bytes), name: "ZMQ_RCVBUF")
        }
        zeroCopyMinimumBytes = max(1, options.zeroCopyMinimumBytes)
        if let curve = options.curve { try apply(curve) }
        if let endpoint = options.monitorEndpoint { try monitor(on: endpoint) }
    }

    // MARK: Security

    /// Sets the CURVE options (before bind/connect: they apply to connections made afterwards).
    private func apply(_ curve: CurveSecurity) throws(TransportError) {
        switch curve {
        case .server(let pair):
            try setOption(ZMQ_CURVE_SERVER, 1, name: "ZMQ_CURVE_SERVER")
            try setOption(ZMQ_CURVE_SECRETKEY, bytes: pair.secretKey.bytes, name: "ZMQ_CURVE_SECRETKEY")
            try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(ZAPHandler.domain.utf8), name: "ZMQ_ZAP_DOMAIN")
            // Without it libzmq admits every client when no ZAP handler answers (RFC 27's
            // "Stonehouse" fallback); with it, a handler that is not running admits nobody.
            try setOption(Self.zapEnforceDomain, 1, name: "ZMQ_ZAP_ENFORCE_DOMAIN")
        case .client(let pair, let server):
            try setOption(ZMQ_CURVE_SERVERKEY, bytes: server.bytes, name: "ZMQ_CURVE_SERVERKEY")
            try setOption(ZMQ_CURVE_PUBLICKEY, bytes: pair.publicKey.bytes, name: "ZMQ_CURVE_PUBLICKEY")
            try setOption(ZMQ_CURVE_SECRETKEY, bytes: pair.secretKey.bytes, name: "ZMQ_CURVE_SECRETKEY")
        }
    }

    /// ZMQ_ZAP_ENFORCE_DOMAIN: a draft option in zmq.h (hidden without ZMQ_BUILD_DRAFT_API) that
    /// libzmq 4.3 accepts all the same.
    private static let zapEnforceDomain: Int32 = 93

    /// The security mechanism in use: ZMQ_NULL (0), ZMQ_PLAIN (1) or ZMQ_CURVE (2).
    package var mechanism: Int32? {
        guard let handle else { return nil }
        var value: Int32 = -1
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(handle, ZMQ_MECHANISM, &value, &size) == 0 else { return nil }
        return value
    }

    /// Publishes this socket's connection and handshake events on `endpoint` (`inproc://`), read by
    /// a PAIR socket of the same context (`HandshakeMonitor`).
    private func monitor(on endpoint: String) throws(TransportError) {
        guard let handle else { throw .option(name: "zmq_socket_monitor", reason: "the socket is closed") }
        if zmq_socket_monitor(handle, endpoint, ZMQ_EVENT_ALL) != 0 {
            throw .option(name: "zmq_socket_monitor", reason: "\(endpoint): \(zmqLastError().reason)")
        }
    }

    // MARK: Endpoints

    /// Binds `endpoint` (`tcp://HOST:PORT`, `tcp://HOST:*` for a free port, `ipc://PATH`, `inproc://NAME`).
    ///
    /// libzmq silently takes over an `ipc://` path another process is listening on; this refuses
    /// instead, like a busy TCP port, so two coordinators cannot steal each other's endpoint.
    package func bind(_ endpoint: String) throws(TransportError) {
        guard let handle else { throw .bind(endpoint: endpoint, code: ENOTSOCK, reason: "the socket is closed") }
        if endpoint.hasPrefix("ipc://"), UnixSocketProbe.hasListener(path: String(endpoint.dropFirst("ipc://".count))) {
            throw .bind(endpoint: endpoint, code: EADDRINUSE, reason: zmqErrorText(EADDRINUSE))
        }
        if zmq_bind(handle, endpoint) != 0 {
            let error = zmqLastError()
            throw .bind(endpoint: endpoint, code: error.code, reason: error.reason)
        }
    }

    /// Connects to `endpoint`. The connection itself is made (and remade) in the background;
    /// this fails only for a malformed or unsupported endpoint.
    package func connect(_ endpoint: String) throws(TransportError) {
        guard let handle else { throw .connect(endpoint: endpoint, code: ENOTSOCK, reason: "the socket is closed") }
        if zmq_connect(handle, endpoint) != 0 {
            let error = zmqLastError()
            throw .connect(endpoint: endpoint, code: error.code, reason: error.reason)
        }
    }

    /// The endpoint last bound or connected, with wildcards resolved (`tcp://127.0.0.1:43125`).
    package var lastEndpoint: String? {
        guard let handle else { return nil }
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Messages

    /// Sends one multipart message without waiting. A ROUTER needs `peer`; other kinds ignore it.
    ///
    /// Frames of at least `zeroCopyMinimumBytes` are not copied: libzmq holds a reference to the
    /// `Frame` until its I/O thread has written the bytes.
    package func send(_ frames: [Frame], to peer: PeerID? = nil) throws(TransportError) -> SendOutcome {
        guard let handle else { throw .send(reason: "the socket is closed") }
        guard !frames.isEmpty else { throw .send(reason: "a message needs at least one frame") }
        if kind == .router {
            guard let peer else { throw .missingPeer }
            let rc = peer.bytes.withUnsafeBytes {
                zmq_send(handle, $0.baseAddress, $0.count, ZMQ_DONTWAIT | ZMQ_SNDMORE)
            }
            if rc < 0 {
                let error = zmqLastError()
                switch error.code {
                case EAGAIN: return .wouldBlock
                case EHOSTUNREACH: return .unreachable
                default: throw .send(reason: error.reason)
                }
            }
        }
        for (i, frame) in frames.enumerated() {
            let flags = ZMQ_DONTWAIT | (i + 1 < frames.count ? ZMQ_SNDMORE : 0)
            let rc =
                frame.count >= zeroCopyMinimumBytes
                ? sendByReference(frame, handle: handle, flags: flags)
                : sendCopy(frame, handle: handle, flags: flags)
            if rc < 0 {
                // After the first frame libzmq accepts the rest of a multipart message (its queue
                // limits count whole messages), so EAGAIN can only come from the first frame.
                let error = zmqLastError()
                if error.code == EAGAIN && i == 0 { return .wouldBlock }
                if error.code == EHOSTUNREACH { return .unreachable }
                throw .send(reason: error.reason)
            }
        }
        return .sent
    }

    private func sendCopy(_ frame: Frame, handle: UnsafeMutableRawPointer, flags: Int32) -> Int32 {
        frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
    }

    private func sendByReference(_ frame: Frame, handle: UnsafeMutableRawPointer, flags: Int32) -> Int32 {
        var message = zmq_msg_t()
        // The retain is balanced by the free callback, which libzmq calls (on its I/O thread) once
        // the bytes are written, or at once if the message is dropped.
        let owner = Unmanaged.passRetained(frame).toOpaque()
        let rc = zmq_msg_init_data(
            &message, frame.start, frame.count,
            { _, hint in
                if let hint { Unmanaged<Frame>.fromOpaque(hint).release() }
            }, owner)
        guard rc == 0 else {
            Unmanaged<Frame>.fromOpaque(owner).release()
            return rc
        }
        let sent = zmq_msg_send(&message, handle, flags)
        if sent < 0 { zmq_msg_close(&message) }
        return sent < 0 ? -1 : 0
    }

    /// Receives one whole multipart message, or nil if none is waiting (and `wait` is false).
    /// On a ROUTER the routing-id frame becomes `peer`.
    package func receive(wait: Bool = false) throws(TransportError) -> ReceivedMessage? {
        guard let handle else { throw .receive(reason: "the socket is closed") }
        var frames: [Frame] = []
        var peer: PeerID?
        var first = true
        while true {
            let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
            message.initialize(to: zmq_msg_t())
            zmq_msg_init(message)
            // Parts of a multipart message arrive together, so only the first receive can block.
            if zmq_msg_recv(message, handle, first && !wait ? ZMQ_DONTWAIT : 0) < 0 {
                let error = zmqLastError()
                zmq_msg_close(message)
                message.deallocate()
                if error.code == EAGAIN && first { return nil }
                throw .receive(reason: error.reason)
            }
            let more = zmq_msg_more(message) != 0
            if first && kind == .router {
                peer = PeerID(Array(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))))
                zmq_msg_close(message)
                message.deallocate()
            } else if zmq_msg_size(message) >= zeroCopyMinimumBytes {
                frames.append(Frame(takingMessage: message))
            } else {
                frames.append(
                    Frame(copying: UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))))
                zmq_msg_close(message)
                message.deallocate()
            }
            first = false
            if !more { return ReceivedMessage(peer: peer, frames: frames) }
        }
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) until a message can be received or, if
    /// given, `fileDescriptor` is readable. Returns which; an interrupted wait returns neither.
    package func poll(alsoReadable fileDescriptor: Int32? = nil, timeoutMilliseconds: Int) throws(TransportError)
        -> (socket: Bool, fileDescriptor: Bool)
    {
        guard let handle else { throw .poll(reason: "the socket is closed") }
        let readable = Int16(ZMQ_POLLIN)
        // On the stack: the socket thread polls once per turn and should not allocate for it.
        return try withUnsafeTemporaryAllocation(of: zmq_pollitem_t.self, capacity: 2) { items throws(TransportError) in
            items[0] = zmq_pollitem_t(socket: handle, fd: 0, events: readable, revents: 0)
            items[1] = zmq_pollitem_t(socket: nil, fd: fileDescriptor ?? -1, events: readable, revents: 0)
            let count: Int32 = fileDescriptor == nil ? 1 : 2
            if zmq_poll(items.baseAddress, count, timeoutMilliseconds) < 0 {
                let error = zmqLastError()
                if error.code == EINTR { return (false, false) }
                throw .poll(reason: error.reason)
            }
            return ((items[0].revents & readable) != 0, count == 2 && (items[1].revents & readable) != 0)
        }
    }

    /// Closes the socket. With a linger, libzmq keeps sending queued messages in the background
    /// for up to that long (terminating the context waits for them); with 0 they are dropped.
    package func close(lingerMilliseconds: Int = 0) {
        guard let handle else { return }
        var linger = Int32(clamping: lingerMilliseconds)
        zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        zmq_close(handle)
        self.handle = nil
    }
}
