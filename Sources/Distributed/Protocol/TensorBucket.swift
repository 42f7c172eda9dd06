import Training
import TensorCore

/// One bucket of a parameter or gradient arena on the wire: values `elementOffset ..<
/// elementOffset + elementCount` of an arena of `totalCount` Float32 values, carried as Float32 or
/// Float16 in `payload`.
public struct TensorBucket: Sendable {
    public let step: Int
    /// The sender's rank (gradients); 0 for weights.
    public let rank: Int
    /// Which partial sum of the step this is, when a worker sends more than one (e.g. the
    /// micro-batches it took over from a lost worker); 0 otherwise. Echoes `WorkOrder.group`.
    public let group: Int
    /// Gradients: the node of the step's canonical summation tree whose sum this is (a worker
    /// sends one sum per node covering its micro-batches, see `TreeNode.cover`); nil for weights.
    public let node: TreeNode?
    public let index: Int
    public let bucketCount: Int
    public let elementOffset: Int
    public let elementCount: Int
    public let totalCount: Int
    public let elementType: TensorElementType
    /// The raw values (elementCount x elementType.byteSize bytes).
    public let payload: Frame

    public var range: Range<Int> { elementOffset..<(elementOffset + elementCount) }

    /// Encodes bucket `bucket` of `plan` from `arena` (which holds `plan.elementCount` values).
    ///
    /// The values are copied (Float32) or converted with F16C (Float16) into a frame of their own,
    /// from `pool` if given, so the arena may change as soon as this returns, while the frame is
    /// still being sent (to any number of peers, without further copies).
    public init(step: Int, rank: Int = 0, group: Int = 0, node: TreeNode? = nil, bucket: BucketPlan.Bucket, of plan: BucketPlan,
                from arena: UnsafePointer<Float>, as elementType: TensorElementType, pool: FramePool? = nil) {
        self.step = step
        self.rank = rank
        self.group = group
        self.node = node
        index = bucket.index
        bucketCount = plan.bucketCount
        elementOffset = bucket.offset
        elementCount = bucket.count
        totalCount = plan.elementCount
        self.elementType = elementType
        let source = arena + bucket.offset
        let count = bucket.count
        payload = Frame(byteCount: count * elementType.byteSize, pool: pool) { bytes in
            guard let base = bytes.baseAddress else { return }
            switch elementType {
            case .float32: base.copyMemory(from: source, byteCount: count * 4)
            case .float16: Half.encode(source, base.bindMemory(to: UInt16.self, capacity: count), count: count)
            }
        }
    }

    /// A decoded bucket (fields already validated).
    init(header: MessageHeader, elementType: TensorElementType, payload: Frame) {
        step = Int(header.step)
        rank = Int(header.rank)
        group = Int(header.group)
        node = header.values.1 > 0 ? TreeNode(start: Int(header.values.0), count: Int(header.values.1)) : nil
        index = Int(header.bucketIndex)
        bucketCount = Int(header.bucketCount)
        elementOffset = Int(header.elementOffset)
        elementCount = Int(header.elementCount)
        totalCount = Int(header.totalCount)
        self.elementType = elementType
        self.payload = payload
    }

    /// Writes the values into `arena` (of `arenaCount` values) at `elementOffset`, as Float32.
    public func copyValues(into arena: UnsafeMutablePointer<Float>, arenaCount: Int) throws(ProtocolError) {
        guard totalCount == arenaCount else { throw .arenaSizeMismatch(message: totalCount, local: arenaCount) }
        decode(into: arena + elementOffset)
    }

    /// Writes the values into `arena` (of `arenaCount` Float16 values, raw bits) at `elementOffset`:
    /// a Float16 payload bit for bit, a Float32 one rounded to nearest even.
    public func copyHalfValues(into arena: UnsafeMutablePointer<UInt16>, arenaCount: Int) throws(ProtocolError) {
        guard totalCount == arenaCount else { throw .arenaSizeMismatch(message: totalCount, local: arenaCount) }
        copyPayload(into: arena + elementOffset, native: .float16, converting: Float.self) { Half.encode($0, $1, count: $2) }
    }

    /// Calls `body` with the values as Float32 (`elementCount` of them): in place when they
    /// arrived as aligned Float32, otherwise converted into `scratch` (resized, no allocation
    /// once it is large enough).
    public func withFloat32Values<R, E: Error>(scratch: FloatBuffer,
                                                _ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        if elementType == .float32, let start = payload.start,
           Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
            return try body(UnsafeBufferPointer(start: start.assumingMemoryBound(to: Float.self), count: elementCount))
        }
        scratch.resize(elementCount)
        decode(into: scratch.pointer)
        return try body(UnsafeBufferPointer(start: scratch.pointer, count: elementCount))
    }

    private func decode(into destination: UnsafeMutablePointer<Float>) {
        copyPayload(into: destination, native: .float32, converting: UInt16.self) { Half.decode($0, $1, count: $2) }
    }

    /// Copies the payload into `destination` as `D`: byte for byte when it already holds `D`
    /// (`native`), otherwise through `convert` from `S`.
    private func copyPayload<S, D>(into destination: UnsafeMutablePointer<D>, native: TensorElementType, converting _: S.Type,
                                   _ convert: (UnsafePointer<S>, UnsafeMutablePointer<D>, Int) -> Void) {
        let count = elementCount
        payload.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, count > 0 else { return }
            if elementType == native {
                UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: count * MemoryLayout<D>.stride)
            } else if Int(bitPattern: base) % MemoryLayout<S>.alignment == 0 {
                convert(base.assumingMemoryBound(to: S.self), destination, count)
            } else {
                // Small frames can start at an odd address inside libzmq's receive buffer.
                let aligned = UnsafeMutablePointer<S>.allocate(capacity: count)
                defer { aligned.deallocate() }
                UnsafeMutableRawPointer(aligned).copyMemory(from: base, byteCount: count * MemoryLayout<S>.stride)
                convert(aligned, destination, count)
            }
        }
    }
}
