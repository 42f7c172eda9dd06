import Synchronization

/// Recycled, fixed-capacity buffers for outgoing frames.
///
/// A frame sent zero-copy is in use until libzmq's I/O thread has written it, which the sender
/// cannot predict; a pooled frame returns its buffer here when it is released, so the next bucket
/// reuses it instead of allocating. At most `maxRetained` idle buffers are kept; extra ones are
/// freed, so the pool never holds more than the peak number of buffers in flight.
package final class FramePool: Sendable {
    /// Bytes per buffer; larger frames are allocated outside the pool.
    package let frameCapacity: Int
    package let maxRetained: Int
    /// Idle buffers by address (plain integers, so the locked state is `Sendable`): each buffer is
    /// owned by exactly one of this list or a live frame.
    private struct Idle: ~Copyable {
        var addresses: [Int] = []
        var inUse = 0
        deinit { for address in addresses { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() } }
    }
    private let idle = Mutex(Idle())

    package init(frameCapacity: Int, maxRetained: Int = 64) {
        self.frameCapacity = max(1, frameCapacity)
        self.maxRetained = max(0, maxRetained)
    }

    /// Number of idle buffers ready for reuse.
    package var idleCount: Int { idle.withLock { $0.addresses.count } }

    /// Number of buffers held by live frames (for example frames libzmq has not finished sending).
    package var framesInUse: Int { idle.withLock { $0.inUse } }

    func take() -> UnsafeMutableRawPointer {
        let address = idle.withLock { state -> Int? in
            state.inUse += 1
            return state.addresses.popLast()
        }
        if let address, let buffer = UnsafeMutableRawPointer(bitPattern: address) { return buffer }
        return UnsafeMutableRawPointer.allocate(byteCount: frameCapacity, alignment: 64)
    }

    func recycle(_ buffer: UnsafeMutableRawPointer) {
        let address = Int(bitPattern: buffer)
        let kept = idle.withLock { state -> Bool in
            state.inUse -= 1
            guard state.addresses.count < maxRetained else { return false }
            state.addresses.append(address)
            return true
        }
        if !kept { buffer.deallocate() }
    }
}
