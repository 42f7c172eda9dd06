/// Splits a flat arena of `elementCount` Float32 values into consecutive buckets.
///
/// Buckets are sized in Float32 bytes (at most `maxBucketBytes`, default 4 MiB = 1 Mi values), so
/// the plan — and every bucket's index, offset and count — is the same whether the values travel
/// as Float32 or Float16 (a Float16 bucket is half as many bytes on the wire). Small buckets let
/// the receiver reduce bucket i while bucket i+1 is still arriving.
package struct BucketPlan: Sendable, Equatable, Sequence {
    package static let defaultMaxBucketBytes = 4 << 20

    /// One bucket: `count` values starting at `offset`.
    package struct Bucket: Sendable, Equatable {
        package let index: Int
        package let offset: Int
        package let count: Int
        package var range: Range<Int> { offset..<(offset + count) }
    }

    package let elementCount: Int
    package let elementsPerBucket: Int

    package init(elementCount: Int, maxBucketBytes: Int = BucketPlan.defaultMaxBucketBytes) {
        self.elementCount = Swift.max(0, elementCount)
        elementsPerBucket = Swift.max(1, maxBucketBytes / MemoryLayout<Float>.size)
    }

    package var bucketCount: Int { (elementCount + elementsPerBucket - 1) / elementsPerBucket }

    /// Bucket `index` (0 ..< bucketCount).
    package func bucket(_ index: Int) -> Bucket {
        let offset = Swift.min(elementCount, Swift.max(0, index) * elementsPerBucket)
        return Bucket(index: index, offset: offset, count: Swift.min(elementsPerBucket, elementCount - offset))
    }

    package func makeIterator() -> AnyIterator<Bucket> {
        var next = 0
        let plan = self
        return AnyIterator {
            guard next < plan.bucketCount else { return nil }
            defer { next += 1 }
            return plan.bucket(next)
        }
    }
}
