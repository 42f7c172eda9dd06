extension BucketPlan {
    /// Checks a received tensor bucket against this plan, the receiver's own, before anything is
    /// read from it: arena size, bucket count, index, offset, element count, element type, and that
    /// the payload holds exactly the bytes of those elements. A bucket that passes can be read as
    /// `bucket(index).count` values of the receiver's arena, whatever its sender claimed.
    package func check(_ received: TensorBucket, kind: MessageKind, elementType: TensorElementType)
        throws(ProtocolError)
    {
        guard received.totalCount == elementCount else {
            throw .arenaSizeMismatch(message: received.totalCount, local: elementCount)
        }
        guard received.bucketCount == bucketCount else {
            throw .invalidField(
                kind: kind, field: "bucketCount", value: Int64(received.bucketCount),
                reason: "differs from this plan's \(bucketCount) buckets")
        }
        guard received.index >= 0, received.index < bucketCount else {
            throw .invalidField(
                kind: kind, field: "bucketIndex", value: Int64(received.index),
                reason: "is outside this plan's \(bucketCount) buckets")
        }
        let expected = bucket(received.index)
        guard received.elementOffset == expected.offset else {
            throw .invalidField(
                kind: kind, field: "elementOffset", value: Int64(received.elementOffset),
                reason: "is not bucket \(expected.index)'s offset \(expected.offset)")
        }
        guard received.elementCount == expected.count else {
            throw .invalidField(
                kind: kind, field: "elementCount", value: Int64(received.elementCount),
                reason: "is not bucket \(expected.index)'s \(expected.count) elements")
        }
        guard received.elementType == elementType else {
            throw .wrongPayloadType(
                kind: kind, expected: [elementType.payloadType], actual: received.elementType.payloadType)
        }
        let bytes = expected.count * elementType.byteSize
        guard received.payload.count == bytes else {
            throw .payloadSize(kind: kind, expectedBytes: bytes, actualBytes: received.payload.count)
        }
    }

    /// The largest frame a peer of this protocol may send or receive: a full bucket of Float32
    /// values, or a handshake (hello, welcome with its config text) of at most 1 MiB. Set as
    /// `ZMQ_MAXMSGSIZE`, libzmq drops a connection that announces a larger frame before reading it.
    package static let maxFrameBytes = Swift.max(defaultMaxBucketBytes, 1 << 20) + MessageHeader.byteCount
}
