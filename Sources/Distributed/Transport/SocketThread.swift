import Dispatch
import Foundation

/// A ZeroMQ socket on its own thread, usable from any thread, task or actor.
///
/// libzmq sockets must not be shared between threads, and their calls block; so each socket lives
/// on a dedicated thread that runs a poll loop. Other code posts messages with `send` (never
/// blocks: the message is queued and the thread is woken through a pipe) and reads what arrives
/// from `events`, an `AsyncStream` an actor can `for await`.
///
/// ```swift
/// let coordinator = try SocketThread(.router(bind: "tcp://127.0.0.1:5555"))
/// for await event in coordinator.events {
///     if case .message(let m) = event, let peer = m.peer { coordinator.send(reply, to: peer) }
/// }
/// coordinator.stop()
/// ```
///
/// Received messages are buffered without limit until consumed; the protocol bounds them (a
/// worker sends one gradient per step). Ordering: messages to one peer leave in the order they
/// were posted; a peer whose queue is full (`SocketOptions.sendHighWaterMark`) delays only its own.
package final class SocketThread: Sendable {
    package enum Role: Sendable {
        /// Binds a ROUTER (the coordinator): many peers, each message tagged with its peer.
        case router(bind: String)
        /// Connects a DEALER (a worker) to a ROUTER, reconnecting by itself if the connection
        /// drops. With a `routingID` the ROUTER sees that id instead of a random one.
        case dealer(connect: String, routingID: PeerID? = nil)
    }

    /// Traffic since the thread started (payload bytes of all frames, routing ids excluded).
    package struct Statistics: Sendable, Equatable {
        package var bytesSent: Int
        package var bytesReceived: Int
        package var messagesSent: Int
        package var messagesReceived: Int
    }

    package let kind: ZMQSocket.Kind
    /// The endpoint as bound or connected, wildcards resolved (`tcp://127.0.0.1:*` becomes the real port).
    package let endpoint: String
    /// Everything that arrives, in order. Single consumer. Finishes after `stop()` (or after a
    /// `.failed` event if the socket breaks).
    package let events: AsyncStream<SocketEvent>
    private let mailbox: SocketMailbox
    private let finished = DispatchSemaphore(value: 0)

    /// Creates the socket, binds or connects it (errors are thrown here), then starts its thread.
    ///
    /// - Parameter context: nil gives the socket a context of its own, terminated when it stops.
    ///   Pass a shared context for `inproc://` endpoints (they only reach sockets of the same context).
    package init(_ role: Role, options: SocketOptions = SocketOptions(), context: ZMQContext? = nil)
        throws(TransportError)
    {
        let zmqContext: ZMQContext
        if let context { zmqContext = context } else { zmqContext = try ZMQContext() }
        let socket: ZMQSocket
        switch role {
        case .router(let endpoint):
            socket = try ZMQSocket(.router, context: zmqContext)
            try socket.apply(options)
            try socket.bind(endpoint)
            self.endpoint = socket.lastEndpoint ?? endpoint
        case .dealer(let endpoint, let routingID):
            socket = try ZMQSocket(.dealer, context: zmqContext)
            if let routingID { try socket.setRoutingID(routingID) }
            try socket.apply(options)
            try socket.connect(endpoint)
            self.endpoint = endpoint
        }
        kind = socket.kind
        mailbox = try SocketMailbox()
        let (events, continuation) = AsyncStream.makeStream(of: SocketEvent.self, bufferingPolicy: .unbounded)
        self.events = events

        let handOver = SocketHandOver(socket)
        let loop = SocketLoop(
            mailbox: mailbox, continuation: continuation, heartbeatInterval: options.heartbeatInterval)
        let finished = self.finished
        let thread = Thread {
            if let socket = handOver.take() { loop.run(socket) }
            // The socket (and a context of its own, which waits out any linger) is gone by now.
            finished.signal()
        }
        thread.name = "zmq-\(socket.kind)"
        thread.start()
    }

    deinit { stop() }

    /// Queues a multipart message. A ROUTER needs `peer`; a DEALER ignores it.
    ///
    /// Returns at once; false if the thread is stopping or stopped (the message is dropped). A
    /// message that cannot be delivered later is reported as `.undeliverable` on `events`. The
    /// frames must not change afterwards (`Frame` is immutable, so they cannot).
    @discardableResult
    package func send(_ frames: [Frame], to peer: PeerID? = nil) -> Bool {
        mailbox.post(OutgoingMessage(peer: peer, frames: frames))
    }

    /// Drops messages still queued for `peer` (for example a worker declared dead whose queue is full).
    package func discardQueued(for peer: PeerID) {
        mailbox.discardQueued(for: peer)
    }

    /// Stops the thread and waits for it to exit: closes the socket, finishes `events`. Messages
    /// not yet sent are dropped, unless `lingerMilliseconds` > 0, in which case the thread tries
    /// to send them and libzmq keeps flushing for up to that long (only waited for when the socket
    /// owns its context). Safe to call more than once and from any thread except the socket's own.
    package func stop(lingerMilliseconds: Int = 0) {
        mailbox.requestStop(lingerMilliseconds: lingerMilliseconds)
        finished.wait()
        finished.signal()  // let any later (or concurrent) stop() return too
    }

    // MARK: Liveness

    /// Sends `frames` to `peer` (nil on a DEALER) every `SocketOptions.heartbeatInterval` from the
    /// socket thread, and records when anything last arrived from `peer`, until
    /// `stopKeepingAlive(peer)`. Calling it again replaces the frames. Liveness so never depends
    /// on what the socket's owner is doing: an actor that validates for minutes still answers.
    package func keepAlive(_ peer: PeerID?, with frames: [Frame]) {
        mailbox.keepAlive(peer, frames: frames, now: DispatchTime.now().uptimeNanoseconds)
    }

    package func stopKeepingAlive(_ peer: PeerID?) { mailbox.stopKeepingAlive(peer) }

    /// Seconds since the socket thread last received any message from `peer` (or since
    /// `keepAlive(peer)`, if nothing came yet); nil for a peer that is not kept alive.
    package func secondsSinceHeard(_ peer: PeerID?) -> Double? {
        guard let heard = mailbox.lastHeard(peer) else { return nil }
        let now = DispatchTime.now().uptimeNanoseconds
        return now > heard ? Double(now - heard) / 1e9 : 0
    }

    package var statistics: Statistics {
        Statistics(
            bytesSent: mailbox.bytesSent.load(ordering: .relaxed),
            bytesReceived: mailbox.bytesReceived.load(ordering: .relaxed),
            messagesSent: mailbox.messagesSent.load(ordering: .relaxed),
            messagesReceived: mailbox.messagesReceived.load(ordering: .relaxed))
    }
}

/// Carries a socket from the thread that created it to its socket thread.
///
/// `@unchecked Sendable`: the creating thread never touches the socket after handing it over,
/// `take()` is called once by the socket thread, and `Thread.start()` is the full memory barrier
/// libzmq requires when a socket changes threads.
private final class SocketHandOver: @unchecked Sendable {
    private var socket: ZMQSocket?
    init(_ socket: ZMQSocket) { self.socket = socket }
    func take() -> ZMQSocket? {
        defer { socket = nil }
        return socket
    }
}
