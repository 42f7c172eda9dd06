import TensorCore
import Training

/// One bucket of a parameter or gradient arena on the wire: values `elementOffset ..<
/// elementOffset + elementCount` of an arena of `totalCount` Float32 values, carried as Float32 or
/// Float16 in `payload`.
package struct TensorBucket: Sendable {
    package let step: Int
    /// The sender's rank (gradients); 0 for weights.
    package let rank: Int
    /// Gradients: echoes `WorkOrder.attempt` (answers to an older plan of the step are ignored);
    /// 0 for weights.
    package let attempt: Int
    /// Gradients: the node of the step's canonical summation tree whose sum this is (a worker
    /// sends one sum per node covering its micro-batches, see `TreeNode.cover`); nil for weights.
    package let node: TreeNode?
    package let index: Int
    package let bucketCount: Int
    package let elementOffset: Int
    package let elementCount: Int
    package let totalCount: Int
    package let elementType: TensorElementType
    /// The raw values (elementCount x elementType.byteSize bytes).
    package let payload: Frame

    package var range: Range<Int> { elementOffset..<(elementOffset + elementCount) }

    /// Encodes bucket `bucket` of `plan` from `arena` (which holds `plan.elementCount` values).
    ///
    /// The values are copied (Float32) or converted with F16C (Float16) into a frame of their own,
    /// from `pool` if given, so the arena may change as soon as this returns, while the frame is
    /// still being sent (to any number of peers, without further copies).
    package init(
        step: Int, rank: Int = 0, attempt: Int = 0, node: TreeNode? = nil, bucket: BucketPlan.Bucket,
        of plan: BucketPlan,
        from arena: UnsafePointer<Float>, as elementType: TensorElementType, pool: FramePool? = nil
    ) {
        self.step = step
        self.rank = rank
        self.attempt = attempt
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

    /// Decodes a `weights` or `gradients` bucket, checking that it lies inside its arena, that its
    /// index is below its bucket count, and that a gradient names an aligned power-of-two tree
    /// node (header values 0 and 1: the node's first leaf and leaf count). Whether it matches the
    /// receiver's own plan is `BucketPlan.check`'s to say.
    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let kind = header.kind
        step = try header.nonNegative("step", header.step)
        rank = try header.nonNegative("rank", header.rank)
        attempt = try header.nonNegative("attempt", header.attempt)
        let offset = try header.nonNegative("elementOffset", header.elementOffset)
        let total = try header.nonNegative("totalCount", header.totalCount)
        let count = try header.nonNegative("elementCount", header.elementCount)
        guard offset <= total, count <= total - offset else {
            throw .invalidField(
                kind: kind, field: "elementOffset + elementCount", value: header.elementOffset &+ header.elementCount,
                reason: "exceeds totalCount \(total)")
        }
        bucketCount = try header.nonNegative("bucketCount", header.bucketCount)
        index = try header.nonNegative("bucketIndex", header.bucketIndex)
        guard index < bucketCount else {
            throw .invalidField(
                kind: kind, field: "bucketIndex", value: header.bucketIndex,
                reason: "is not below bucketCount \(bucketCount)")
        }
        let (nodeStartValue, nodeCountValue, _, _) = header.values
        let nodeStart = try header.nonNegative("node start", nodeStartValue)
        let nodeCount = try header.nonNegative("node leaf count", nodeCountValue)
        if kind == .gradients {
            guard nodeCount > 0, nodeCount & (nodeCount - 1) == 0, nodeStart % nodeCount == 0 else {
                throw .invalidField(
                    kind: kind, field: "node", value: nodeCountValue,
                    reason: "is not an aligned power-of-two block of leaves (start \(nodeStart))")
            }
        }
        node = nodeCount > 0 ? TreeNode(start: nodeStart, count: nodeCount) : nil
        elementOffset = offset
        elementCount = count
        totalCount = total
        elementType = header.payloadType == .float16 ? .float16 : .float32
        self.payload = payload
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = elementType.payloadType
        header.step = Int64(step)
        header.rank = Int64(rank)
        header.attempt = Int64(attempt)
        header.bucketIndex = Int64(index)
        header.bucketCount = Int64(bucketCount)
        header.elementOffset = Int64(elementOffset)
        header.totalCount = Int64(totalCount)
        if let node {
            header.values.0 = Int64(node.start)
            header.values.1 = Int64(node.count)
        }
        return payload
    }

    /// Writes the values into `arena` (of `arenaCount` values) at `elementOffset`, as Float32.
    package func copyValues(into arena: UnsafeMutablePointer<Float>, arenaCount: Int) throws(ProtocolError) {
        guard totalCount == arenaCount else { throw .arenaSizeMismatch(message: totalCount, local: arenaCount) }
        decode(into: arena + elementOffset)
    }

    /// Writes the values into `arena` (of `arenaCount` Float16 values, raw bits) at `elementOffset`:
    /// a Float16 payload bit for bit, a Float32 one rounded to nearest even.
    package func copyHalfValues(into arena: UnsafeMutablePointer<UInt16>, arenaCount: Int) throws(ProtocolError) {
        guard totalCount == arenaCount else { throw .arenaSizeMismatch(message: totalCount, local: arenaCount) }
        copyPayload(into: arena + elementOffset, native: .float16, converting: Float.self) {
            Half.encode($0, $1, count: $2)
        }
    }

    /// Calls `body` with the values as Float32 (`elementCount` of them): in place when they
    /// arrived as aligned Float32, otherwise converted into `scratch` (resized, no allocation
    /// once it is large enough).
    package func withFloat32Values<R, E: Error>(
        scratch: FloatBuffer,
        _ body: (UnsafeBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        if elementType == .float32, let start = payload.start,
            Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0
        {
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
    private func copyPayload<S, D>(
        into destination: UnsafeMutablePointer<D>, native: TensorElementType, converting _: S.Type,
        _ convert: (UnsafePointer<S>, UnsafeMutablePointer<D>, Int) -> Void
    ) {
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
