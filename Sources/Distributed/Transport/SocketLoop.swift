import Dispatch
import Synchronization

/// The body of a socket thread: send what was posted, receive what arrived, sleep in `zmq_poll`
/// until either the socket or the wake pipe is readable.
struct SocketLoop: Sendable {
    let mailbox: SocketMailbox
    let continuation: AsyncStream<SocketEvent>.Continuation

    /// Receives per turn at most this many messages, so posted sends are not starved.
    private static let receiveBatch = 64
    /// While some peer's queue is full, the loop retries this often (libzmq gives no per-peer
    /// "writable again" signal for ROUTER sockets).
    private static let blockedRetryMilliseconds = 1

    /// Seconds between the heartbeats this thread sends to kept-alive peers (nil: none).
    let heartbeatInterval: Double?

    func run(_ socket: ZMQSocket) {
        var pending: [OutgoingMessage] = []
        var linger = 0
        var failure: TransportError?
        let interval = heartbeatInterval.map { UInt64(Swift.max(0.001, $0) * 1e9) }
        var nextHeartbeat = DispatchTime.now().uptimeNanoseconds &+ (interval ?? 0)
        while true {
            let requests = mailbox.collect(into: &pending)
            // Heartbeats come from this thread, whatever the socket's owner is busy with (a
            // coordinator validating for minutes still answers), and queue behind what is pending.
            if let interval, DispatchTime.now().uptimeNanoseconds >= nextHeartbeat {
                // A peer with messages still queued gets those first; they prove life as well, and
                // a stalled peer's queue must not grow by a heartbeat per interval.
                let queued = Set(pending.map(\.peer))
                pending.append(contentsOf: mailbox.heartbeats().filter { !queued.contains($0.peer) })
                nextHeartbeat = DispatchTime.now().uptimeNanoseconds &+ interval
            }
            let blocked = flush(&pending, on: socket)
            if requests.stopRequested {
                linger = requests.lingerMilliseconds
                break
            }
            do {
                for _ in 0..<Self.receiveBatch {
                    guard let message = try socket.receive() else { break }
                    mailbox.heard(message.peer, now: DispatchTime.now().uptimeNanoseconds)
                    mailbox.messagesReceived.add(1, ordering: .relaxed)
                    mailbox.bytesReceived.add(message.frames.reduce(0) { $0 + $1.count }, ordering: .relaxed)
                    continuation.yield(.message(message))
                }
                var timeout = blocked ? Self.blockedRetryMilliseconds : -1
                if interval != nil {
                    let wait =
                        nextHeartbeat > DispatchTime.now().uptimeNanoseconds
                        ? Int((nextHeartbeat - DispatchTime.now().uptimeNanoseconds) / 1_000_000) + 1 : 0
                    timeout = timeout < 0 ? wait : Swift.min(timeout, wait)
                }
                _ = try socket.poll(alsoReadable: mailbox.wakeReadDescriptor, timeoutMilliseconds: timeout)
            } catch {
                failure = error
                break
            }
        }
        mailbox.close()
        socket.close(lingerMilliseconds: linger)
        if let failure { continuation.yield(.failed(failure)) }
        continuation.finish()
    }

    /// Sends pending messages in order, keeping those whose peer is full (and everything after
    /// them for the same peer). Returns true if some are still waiting.
    private func flush(_ pending: inout [OutgoingMessage], on socket: ZMQSocket) -> Bool {
        guard !pending.isEmpty else { return false }
        var waiting: [OutgoingMessage] = []
        var fullPeers: Set<PeerID?> = []
        for message in pending {
            if fullPeers.contains(message.peer) {
                waiting.append(message)
                continue
            }
            do {
                switch try socket.send(message.frames, to: message.peer) {
                case .sent:
                    mailbox.messagesSent.add(1, ordering: .relaxed)
                    mailbox.bytesSent.add(message.frames.reduce(0) { $0 + $1.count }, ordering: .relaxed)
                case .wouldBlock:
                    fullPeers.insert(message.peer)
                    waiting.append(message)
                case .unreachable:
                    let error = message.peer.map { TransportError.unreachable(peer: $0) } ?? .missingPeer
                    continuation.yield(.undeliverable(peer: message.peer, error: error))
                }
            } catch {
                continuation.yield(.undeliverable(peer: message.peer, error: error))
            }
        }
        pending = waiting
        return !waiting.isEmpty
    }
}
