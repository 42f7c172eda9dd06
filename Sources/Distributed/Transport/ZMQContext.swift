import CZMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A ZeroMQ context: the I/O threads that move bytes for the sockets created in it.
///
/// `inproc://` endpoints only connect sockets of the same context, so in-process transports share
/// one; otherwise each `SocketThread` makes its own, which also keeps one endpoint's traffic off
/// another's I/O thread. The context is terminated when the last reference goes, which happens
/// after every socket created in it has been closed (sockets keep their context alive).
///
/// `@unchecked Sendable`: libzmq documents contexts as thread-safe; the handle is never mutated.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq background I/O threads (one moves about 1 GB/s or more).
    public init(ioThreads: Int = 1) throws(TransportError) {
        guard let handle = zmq_ctx_new() else { throw .setup(reason: zmqLastError().reason) }
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: max(1, ioThreads))) != 0 {
            let reason = zmqLastError().reason
            zmq_ctx_term(handle)
            throw .setup(reason: "cannot set \(ioThreads) I/O threads: \(reason)")
        }
        self.handle = handle
    }

    deinit {
        // zmq_ctx_term returns early with EINTR if a signal arrives; it must be repeated.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}
