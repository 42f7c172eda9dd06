/// A contiguous, growable Float32 buffer owned by one layer or one model replica.
///
/// Layers keep their stashed activations in `FloatBuffer`s that are resized, not reallocated, when a
/// batch has the same or a smaller shape than before: in steady state a training step allocates
/// nothing. Memory is 64-byte aligned so BLAS and vector loops see aligned rows.
public final class FloatBuffer {
    /// The first element (64-byte aligned); valid until the next `resize` that grows the buffer.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    package private(set) var capacity: Int
    /// Number of valid elements.
    public private(set) var count: Int

    package init(count: Int = 0, zeroed: Bool = true) {
        capacity = Swift.max(count, 1)
        pointer = FloatBuffer.allocate(capacity)
        self.count = count
        if zeroed { pointer.initialize(repeating: 0, count: capacity) }
    }

    package convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Float>.stride, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    /// Sets the element count, growing the allocation only when needed. Contents are unspecified
    /// after growth unless `zero` is set.
    package func resize(_ newCount: Int, zero: Bool = false) {
        if newCount > capacity {
            pointer.deallocate()
            capacity = newCount
            pointer = FloatBuffer.allocate(capacity)
        }
        count = newCount
        if zero { pointer.update(repeating: 0, count: newCount) }
    }

    /// Sets the valid elements to 0, split over the compute threads (a gradient arena is tens of
    /// megabytes: one thread alone would leave the others waiting every step).
    package func zero() {
        let pointer = pointer, count = count
        let chunk = 16_384
        Parallel.rows((count + chunk - 1) / chunk, costPerRow: chunk / 8) { r in
            let start = r.lowerBound * chunk
            (pointer + start).update(repeating: 0, count: Swift.min(count, r.upperBound * chunk) - start)
        }
    }

    /// The `count` valid elements, for in-place reads and writes.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// A copy of the `count` valid elements.
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Element `i` (0 <= i < count).
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// Bytes currently allocated (for memory accounting).
    package var allocatedBytes: Int { capacity * MemoryLayout<Float>.stride }
}
