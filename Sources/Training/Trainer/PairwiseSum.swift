import TensorCore

/// Sums a sequence of equal-length vectors in a fixed binary tree, like a binary counter: each new
/// vector is pushed, and the two newest partial sums are added while they cover the same number of
/// leaves. For 4 leaves this is (a + b) + (c + d).
///
/// Why: a worker's gradient sum over its micro-batches and the coordinator's sum over workers then
/// form ONE tree over the step's micro-batches whenever every worker holds a contiguous run of the
/// same power-of-two length. 1 worker x 4 micro-batches, 2 x 2 and 4 x 1 give bit-identical
/// gradients, so the worker count cannot change a single weight.
public final class PairwiseSum {
    public let count: Int
    private var partials: [FloatBuffer] = []
    private var spare: [FloatBuffer] = []
    private var leaves: [Int] = []

    public init(count: Int) { self.count = count }

    public func reset() {
        spare.append(contentsOf: partials)
        partials.removeAll(keepingCapacity: true)
        leaves.removeAll(keepingCapacity: true)
    }

    /// Adds the next vector (copied), covering `weight` leaves (a partial sum received from a peer
    /// covers as many leaves as it summed).
    public func push(_ values: UnsafePointer<Float>, weight: Int = 1) {
        if let last = leaves.last, last == weight {
            // It would be combined into the top partial at once: add it there without the copy
            // (a + b == b + a in IEEE arithmetic, so the bits are those of the copy-then-combine).
            VectorOps.add(values, into: partials[partials.count - 1].pointer, count: count)
            leaves[leaves.count - 1] += weight
        } else {
            let b = spare.popLast() ?? FloatBuffer(count: count)
            b.resize(count)
            b.pointer.update(from: values, count: count)
            partials.append(b)
            leaves.append(weight)
        }
        while leaves.count >= 2 && leaves[leaves.count - 1] == leaves[leaves.count - 2] {
            combineTop()
        }
    }

    private func combineTop() {
        let top = partials.removeLast()
        VectorOps.add(top.pointer, into: partials[partials.count - 1].pointer, count: count)
        leaves[leaves.count - 2] += leaves.removeLast()
        spare.append(top)
    }

    /// Writes the total into `destination` (zeros if nothing was pushed). Unequal leftovers (a
    /// count that is not a power of two) are folded newest into older.
    public func total(into destination: UnsafeMutablePointer<Float>) {
        guard !partials.isEmpty else { destination.update(repeating: 0, count: count); return }
        while partials.count > 1 { combineTop() }
        destination.update(from: partials[0].pointer, count: count)
    }

    /// Leaves pushed so far.
    public var leafCount: Int { leaves.reduce(0, +) }
}
