import Dispatch
import Foundation
import Synchronization

/// A socket that answers libzmq itself rather than a peer (the ZAP handler's REP socket, a socket
/// monitor's PAIR), served by `handle` on a thread of its own until `stop()`.
///
/// The socket is created, set up and bound or connected on that thread (so it never changes
/// threads), and `init` returns only once that is done: a ZAP handler is listening before the
/// socket it guards binds. Messages are handled one at a time, in order.
final class ServiceThread: Sendable {
    /// What `handle` decides after a message.
    enum Next { case keepGoing, finish }

    private let mailbox: SocketMailbox
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - setup: binds or connects the new socket (its errors are thrown from `init`).
    ///   - handle: called on the thread for each message; may reply on the socket it is given.
    ///   - failed: called on the thread if the socket breaks (the thread then exits).
    init(
        _ kind: ZMQSocket.Kind, context: ZMQContext, name: String,
        setup: @escaping @Sendable (ZMQSocket) throws(TransportError) -> Void,
        handle: @escaping @Sendable (ReceivedMessage, ZMQSocket) -> Next,
        failed: @escaping @Sendable (TransportError) -> Void
    ) throws(TransportError) {
        let mailbox = try SocketMailbox()
        self.mailbox = mailbox
        let ready = DispatchSemaphore(value: 0)
        let setupError = Locked<TransportError?>(nil)
        let finished = self.finished
        let thread = Thread {
            defer { finished.signal() }
            let socket: ZMQSocket
            do throws(TransportError) {
                socket = try ZMQSocket(kind, context: context)
                try setup(socket)
            } catch {
                setupError.withLock { $0 = error }
                mailbox.close()
                ready.signal()
                return
            }
            ready.signal()
            ServiceThread.serve(socket, mailbox: mailbox, handle: handle, failed: failed)
        }
        thread.name = name
        thread.start()
        ready.wait()
        if let error = setupError.withLock({ $0 }) {
            finished.wait()
            finished.signal()
            throw error
        }
    }

    deinit { stop() }

    /// Closes the socket and waits for the thread to exit. Safe to call more than once.
    func stop() {
        mailbox.requestStop(lingerMilliseconds: 0)
        finished.wait()
        finished.signal()
    }

    private static func serve(
        _ socket: ZMQSocket, mailbox: SocketMailbox,
        handle: (ReceivedMessage, ZMQSocket) -> Next, failed: (TransportError) -> Void
    ) {
        var nothing: [OutgoingMessage] = []
        defer {
            mailbox.close()
            socket.close()
        }
        while true {
            if mailbox.collect(into: &nothing).stopRequested { return }
            do {
                while let message = try socket.receive() {
                    if handle(message, socket) == .finish { return }
                }
                _ = try socket.poll(alsoReadable: mailbox.wakeReadDescriptor, timeoutMilliseconds: -1)
            } catch {
                failed(error)
                return
            }
        }
    }
}

/// A value shared between threads behind a lock (a class, so escaping closures can capture it;
/// a `Mutex` itself cannot be captured).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
