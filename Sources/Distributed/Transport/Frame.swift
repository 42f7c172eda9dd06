import CZMQ

/// One frame (part) of a multipart ZeroMQ message: an immutable run of bytes.
///
/// Large frames move without copies: a sent frame is handed to libzmq by reference (libzmq keeps
/// the frame alive until its I/O thread has written it, then releases it), and a received frame
/// keeps the libzmq message it arrived in. So one weights bucket can be sent to every worker from
/// one buffer, and a gradient bucket is reduced straight from the bytes the kernel delivered.
///
/// `@unchecked Sendable`: the bytes are written only while the frame is being created (before any
/// other thread can see it) and freed only in `deinit`; in between they are read-only.
package final class Frame: @unchecked Sendable {
    /// Number of bytes.
    package let count: Int
    let start: UnsafeMutableRawPointer?
    private let storage: Storage

    private enum Storage {
        case none
        case allocated
        case pooled(FramePool)
        /// A received libzmq message that owns the bytes.
        case message(UnsafeMutablePointer<zmq_msg_t>)
    }

    /// A frame holding a copy of `bytes`.
    package convenience init(_ bytes: [UInt8]) {
        // Copy inside withUnsafeBytes: a pointer escaping that closure may dangle (the array can be
        // released right after its last use), which made small frames intermittently garbage.
        self.init(byteCount: bytes.count) { destination in
            bytes.withUnsafeBytes { source in
                if let base = source.baseAddress, let target = destination.baseAddress {
                    target.copyMemory(from: base, byteCount: source.count)
                }
            }
        }
    }

    /// A frame holding a copy of `bytes`.
    package convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(byteCount: bytes.count) { destination in
            if let base = bytes.baseAddress, let target = destination.baseAddress {
                target.copyMemory(from: base, byteCount: bytes.count)
            }
        }
    }

    /// A frame of `byteCount` bytes written by `initialize` (which must write all of them).
    ///
    /// With a `pool` whose buffers are large enough, the memory is a recycled buffer that goes
    /// back to the pool when the frame is released (after libzmq has sent it), so steady-state
    /// sending allocates nothing. Memory is 64-byte aligned.
    package init(
        byteCount: Int, pool: FramePool? = nil,
        initializingWith initialize: (UnsafeMutableRawBufferPointer) throws -> Void
    ) rethrows {
        count = max(0, byteCount)
        if count == 0 {
            start = nil
            storage = .none
        } else if let pool, count <= pool.frameCapacity {
            start = pool.take()
            storage = .pooled(pool)
        } else {
            start = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            storage = .allocated
        }
        try initialize(UnsafeMutableRawBufferPointer(start: start, count: count))
    }

    /// Takes ownership of a received libzmq message (closed when the frame is released).
    init(takingMessage message: UnsafeMutablePointer<zmq_msg_t>) {
        count = zmq_msg_size(message)
        start = zmq_msg_data(message)
        storage = .message(message)
    }

    deinit {
        switch storage {
        case .none: break
        case .allocated: start?.deallocate()
        case .pooled(let pool): if let start { pool.recycle(start) }
        case .message(let message):
            zmq_msg_close(message)
            message.deinitialize(count: 1)
            message.deallocate()
        }
    }

    /// Calls `body` with the frame's bytes (valid only during the call).
    package func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// A copy of the bytes (for small frames: headers, text, JSON).
    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
