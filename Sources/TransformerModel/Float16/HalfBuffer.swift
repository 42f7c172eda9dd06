import TensorCore

/// A contiguous, growable buffer of IEEE half-precision values (raw `UInt16` bits): the storage
/// side of the Float16 options. Values are written and read only through F16C conversions
/// (`TensorCore.Half`), never computed on.
package final class HalfBuffer {
    package private(set) var pointer: UnsafeMutablePointer<UInt16>
    package private(set) var capacity: Int
    /// Number of valid elements.
    package private(set) var count = 0

    package init(count: Int = 0) {
        capacity = Swift.max(count, 1)
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
        self.count = count
    }

    deinit { pointer.deallocate() }

    /// Sets the element count, growing the allocation only when needed (contents then unspecified).
    package func resize(_ newCount: Int) {
        if newCount > capacity {
            pointer.deallocate()
            capacity = newCount
            pointer = .allocate(capacity: newCount)
        }
        count = newCount
    }

    /// Stores `count` Float32 values rounded to nearest-even Float16 (the buffer takes that count).
    package func store(_ source: UnsafePointer<Float>, count n: Int) {
        resize(n)
        Half.encode(source, pointer, count: n)
    }

    /// Writes all `count` values back as Float32 into `destination`.
    package func load(into destination: UnsafeMutablePointer<Float>) {
        Half.decode(pointer, destination, count: count)
    }

    /// Bytes currently allocated (memory accounting).
    package var allocatedBytes: Int { capacity * MemoryLayout<UInt16>.stride }
}
