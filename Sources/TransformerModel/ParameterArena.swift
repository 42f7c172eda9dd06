import TensorCore

/// A tensor's value and gradient pointers inside the two arenas.
public struct ParameterRef {
    public let value: UnsafeMutablePointer<Float>
    public let grad: UnsafeMutablePointer<Float>
}

/// All parameters in one contiguous buffer and all gradients in another, both laid out by
/// `ParameterLayout`. The buffers are allocated once and never move, so layers keep raw pointers.
public final class ParameterArena {
    public let layout: ParameterLayout
    public let values: FloatBuffer
    public let gradients: FloatBuffer

    public init(layout: ParameterLayout) {
        self.layout = layout
        values = FloatBuffer(count: layout.totalCount)
        gradients = FloatBuffer(count: layout.totalCount)
    }

    public func ref(_ name: String) -> ParameterRef {
        let o = layout.offset(name)
        return ParameterRef(value: values.pointer + o, grad: gradients.pointer + o)
    }

    public func zeroGradients() { gradients.zero() }

    /// Copies of one tensor (tests and inspection).
    public func value(_ name: String) -> [Float] {
        guard let e = layout[name] else { return [] }
        return Array(UnsafeBufferPointer(start: values.pointer + e.offset, count: e.count))
    }

    public func gradient(_ name: String) -> [Float] {
        guard let e = layout[name] else { return [] }
        return Array(UnsafeBufferPointer(start: gradients.pointer + e.offset, count: e.count))
    }

    /// Overwrites one tensor; false if the name is unknown or the size differs.
    @discardableResult
    public func setValue(_ name: String, _ data: [Float]) -> Bool {
        guard let e = layout[name], e.count == data.count else { return false }
        data.withUnsafeBufferPointer { (values.pointer + e.offset).update(from: $0.baseAddress!, count: e.count) }
        return true
    }
}
