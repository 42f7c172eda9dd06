import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One message waiting to be sent by a socket thread.
struct OutgoingMessage: Sendable {
    let peer: PeerID?
    let frames: [Frame]
}

/// What other threads share with a socket thread: the queue of outgoing messages, the stop request,
/// traffic counters, and a pipe that wakes the thread out of `zmq_poll`.
///
/// Only the socket thread touches the socket; everyone else talks to it through this mailbox.
final class SocketMailbox: Sendable {
    private struct State: Sendable {
        var outbox: [OutgoingMessage] = []
        var discardedPeers: [PeerID] = []
        var stopRequested = false
        var lingerMilliseconds = 0
        /// A wake byte is in the pipe and not yet consumed: further posts need not write another.
        var wakePending = false
        /// The pipe is closed; its descriptor numbers may already belong to another file.
        var pipeClosed = false
        /// Kept-alive peers: the heartbeat frames the socket thread sends them, and when (monotonic
        /// nanoseconds) anything last arrived from them. Only registered peers are tracked, so a
        /// stranger sending from ever new routing ids cannot grow this table.
        var keepAlive: [PeerID?: KeepAlive] = [:]
    }

    struct KeepAlive: Sendable {
        var frames: [Frame]
        var lastHeard: UInt64
    }

    /// What the socket thread learns on each turn besides the messages.
    struct Requests {
        var discardedPeers: [PeerID]
        var stopRequested: Bool
        var lingerMilliseconds: Int
    }

    private let state = Mutex(State())
    /// Read end, polled by the socket thread alongside the socket.
    let wakeReadDescriptor: Int32
    private let wakeWriteDescriptor: Int32

    let bytesSent = Atomic<Int>(0)
    let bytesReceived = Atomic<Int>(0)
    let messagesSent = Atomic<Int>(0)
    let messagesReceived = Atomic<Int>(0)

    init() throws(TransportError) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw .setup(reason: "cannot create a wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for descriptor in descriptors {
            // Non-blocking: a full pipe already means "wake up", and draining must not block.
            // Close-on-exec: worker processes spawned by the coordinator must not inherit it.
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        wakeReadDescriptor = descriptors[0]
        wakeWriteDescriptor = descriptors[1]
    }

    /// Queues a message; false if the thread is stopping or stopped.
    func post(_ message: OutgoingMessage) -> Bool {
        state.withLock { s in
            guard !s.stopRequested else { return false }
            s.outbox.append(message)
            wakeLocked(&s)
            return true
        }
    }

    func discardQueued(for peer: PeerID) {
        state.withLock { s in
            s.outbox.removeAll { $0.peer == peer }
            s.discardedPeers.append(peer)
            wakeLocked(&s)
        }
    }

    func requestStop(lingerMilliseconds: Int) {
        state.withLock { s in
            if !s.stopRequested { s.lingerMilliseconds = max(0, lingerMilliseconds) }
            s.stopRequested = true
            wakeLocked(&s)
        }
    }

    /// Starts (or updates the frames of) the keep-alive of `peer`. A new peer counts as heard now.
    func keepAlive(_ peer: PeerID?, frames: [Frame], now: UInt64) {
        state.withLock { s in
            if s.keepAlive[peer] != nil {
                s.keepAlive[peer]?.frames = frames
            } else {
                s.keepAlive[peer] = KeepAlive(frames: frames, lastHeard: now)
            }
        }
    }

    func stopKeepingAlive(_ peer: PeerID?) {
        _ = state.withLock { s in s.keepAlive.removeValue(forKey: peer) }
    }

    /// Socket thread: something arrived from `peer`.
    func heard(_ peer: PeerID?, now: UInt64) {
        state.withLock { s in
            if s.keepAlive[peer] != nil { s.keepAlive[peer]?.lastHeard = now }
        }
    }

    /// When `peer` was last heard (monotonic nanoseconds), if it is kept alive.
    func lastHeard(_ peer: PeerID?) -> UInt64? {
        state.withLock { s in s.keepAlive[peer]?.lastHeard }
    }

    /// Socket thread: the heartbeats due now, one message per kept-alive peer.
    func heartbeats() -> [OutgoingMessage] {
        state.withLock { s in s.keepAlive.map { OutgoingMessage(peer: $0.key, frames: $0.value.frames) } }
    }

    /// Called with the lock held, so the pipe cannot be closed between the check and the write.
    private func wakeLocked(_ s: inout State) {
        guard !s.wakePending, !s.pipeClosed else { return }
        s.wakePending = true
        var byte: UInt8 = 1
        _ = write(wakeWriteDescriptor, &byte, 1)
    }

    /// Socket thread: consumes the wake bytes and moves everything posted so far to `pending`.
    /// (Moved, not copied: a frame must not stay referenced here once libzmq is done with it.)
    func collect(into pending: inout [OutgoingMessage]) -> Requests {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wakeReadDescriptor, &sink, sink.count) > 0 {}
        let (posted, requests) = state.withLock { s in
            s.wakePending = false
            let requests = Requests(
                discardedPeers: s.discardedPeers, stopRequested: s.stopRequested,
                lingerMilliseconds: s.lingerMilliseconds)
            let posted = s.outbox
            s.outbox = []
            s.discardedPeers = []
            return (posted, requests)
        }
        // Discards apply to what was queued before them; later posts (say, a last message to a
        // dropped peer) were posted after and go out.
        if !requests.discardedPeers.isEmpty {
            let discarded = Set(requests.discardedPeers)
            pending.removeAll { $0.peer.map(discarded.contains) ?? false }
        }
        pending.append(contentsOf: posted)
        return requests
    }

    /// Socket thread, when it exits: later posts are refused and nothing writes to the pipe again.
    func close() {
        state.withLock { s in
            s.stopRequested = true
            s.outbox = []
            if !s.pipeClosed {
                s.pipeClosed = true
                closeDescriptor(wakeReadDescriptor)
                closeDescriptor(wakeWriteDescriptor)
            }
        }
    }
}

/// `close(2)` (inside `SocketMailbox` the name `close` means its own method).
private func closeDescriptor(_ descriptor: Int32) { _ = close(descriptor) }
