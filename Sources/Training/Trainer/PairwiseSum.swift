import TensorCore

/// A node of the canonical summation tree over a step's micro-batches: the sum of the leaves at
/// positions `start ..< start + count` of the step (position 0 is the step's first micro-batch),
/// where `count` is a power of two and `start` a multiple of it.
///
/// The tree of a step with M micro-batches is the binary counter's: leaves pushed left to right,
/// two neighbours combined as soon as they are siblings. Its nodes are the aligned power-of-two
/// blocks inside the top-level blocks of M's binary expansion (M = 6: [0,4) and [4,6)), and the
/// top-level blocks are folded newest into older at the end. The gradient of a step is this tree
/// whoever computes which leaves: a worker holding positions lo..<hi sends the sums of
/// `cover(lo..<hi)`, and the coordinator pushes them in position order into the same tree.
package struct TreeNode: Sendable, Hashable, CustomStringConvertible {
    package let start: Int
    package let count: Int

    package init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }

    package var end: Int { start + count }
    package var description: String { "[\(start), \(end))" }

    /// True if `self` is the left sibling of `right` (the two combine into their parent).
    package func isLeftSibling(of right: TreeNode) -> Bool {
        count == right.count && end == right.start && start % (2 * count) == 0
    }

    /// The maximal aligned power-of-two blocks of `positions`, left to right: the fewest nodes of
    /// the canonical tree whose leaves are exactly those positions (one node when the run is
    /// aligned, e.g. 2..<4; two for 1..<3).
    package static func cover(_ positions: Range<Int>) -> [TreeNode] {
        var nodes: [TreeNode] = []
        var p = Swift.max(0, positions.lowerBound)
        while p < positions.upperBound {
            let left = positions.upperBound - p
            var size = p == 0 ? 1 << (Int.bitWidth - 1 - left.leadingZeroBitCount) : p & -p
            while size > left { size >>= 1 }
            nodes.append(TreeNode(start: p, count: size))
            p += size
        }
        return nodes
    }
}

/// Sums equal-length vectors in the canonical tree (`TreeNode`): each pushed vector is the sum of
/// one node, pushed in position order; siblings are combined at once, the newest into the older.
///
/// Why: a worker's sums over its micro-batches and the coordinator's sum over workers then form ONE
/// tree over the step's micro-batches, however they are split (any worker count, a re-plan over
/// survivors, a joiner): the weights do not change by a single bit. Without it, AdamW's eps of
/// 1e-9 turns rounding noise in exactly-zero gradients into lr-sized steps that depend on the split.
package final class PairwiseSum {
    package let count: Int
    private var partials: [FloatBuffer] = []
    private var spare: [FloatBuffer] = []
    /// The node each partial holds, bottom of the stack first.
    package private(set) var nodes: [TreeNode] = []

    package init(count: Int) { self.count = count }

    /// Empties the tree, whose first node will then be at `position` (a worker whose run of the
    /// step starts there). The buffers are kept for reuse: no allocation per step.
    package func reset(startingAt position: Int = 0) {
        spare.append(contentsOf: partials)
        partials.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)  // a push a failed compute left unfinished
        pendingElements = 0
        firstPosition = position
    }

    /// Position of the next leaf (the end of the last node pushed).
    package var nextPosition: Int { nodes.last?.end ?? firstPosition }
    private var firstPosition = 0

    /// Adds the next leaf (one micro-batch's gradient, copied).
    package func push(_ values: UnsafePointer<Float>) {
        push(values, node: TreeNode(start: nextPosition, count: 1))
    }

    /// Adds the sum of `node`, which must start at `nextPosition` (nodes come in position order).
    package func push(_ values: UnsafePointer<Float>, node: TreeNode) {
        beginPush(values, node: node)
        finishPush(0..<count)
    }

    /// One element-wise operation of a push, done range by range (see `beginPush`).
    private enum Step {
        case copy(UnsafePointer<Float>, into: UnsafeMutablePointer<Float>)
        case add(UnsafePointer<Float>, into: UnsafeMutablePointer<Float>)
    }
    /// The operations of the push under way, in order, and how many elements they still have to cover.
    private var pending: [Step] = []
    private var pendingElements = 0

    /// Starts adding the next leaf (`values`, one micro-batch's gradient) whose elements may still be
    /// changing: the tree's `nodes` take their final shape at once, and the arithmetic is done by
    /// `finishPush` on each range of elements once it is final (a worker's last micro-batch, whose
    /// backward finishes the arena from the end: see `ReplicaTrainer.computeGradientParts`).
    package func beginPush(_ values: UnsafePointer<Float>) {
        beginPush(values, node: TreeNode(start: nextPosition, count: 1))
    }

    /// `beginPush` of the sum of `node`, which must start at `nextPosition`.
    ///
    /// Every operation of a push (copy, sibling additions) is element-wise, so doing them range by
    /// range, each range through the whole sequence in order, gives exactly the bits of doing each
    /// over the whole vector: `push` is this with one range.
    package func beginPush(_ values: UnsafePointer<Float>, node: TreeNode) {
        precondition(node.start == nextPosition, "tree nodes must be pushed in position order")
        precondition(pending.isEmpty, "a push must be finished before the next")
        if let last = nodes.last, last.isLeftSibling(of: node) {
            // It would be combined into the top partial at once: add it there without the copy
            // (a + b == b + a in IEEE arithmetic, so the bits are those of the copy-then-combine).
            pending.append(.add(values, into: partials[partials.count - 1].pointer))
            nodes[nodes.count - 1] = TreeNode(start: last.start, count: 2 * last.count)
        } else {
            let b = spare.popLast() ?? FloatBuffer(count: count)
            b.resize(count)
            pending.append(.copy(values, into: b.pointer))
            partials.append(b)
            nodes.append(node)
        }
        while nodes.count >= 2 && nodes[nodes.count - 2].isLeftSibling(of: nodes[nodes.count - 1]) {
            // The top buffer goes to `spare` now but is reused only by a later push, after this
            // one has finished reading it.
            let top = partials.removeLast()
            pending.append(.add(top.pointer, into: partials[partials.count - 1].pointer))
            let right = nodes.removeLast(), left = nodes[nodes.count - 1]
            nodes[nodes.count - 1] = TreeNode(start: left.start, count: left.count + right.count)
            spare.append(top)
        }
        pendingElements = count
    }

    /// Does the push under way on the elements `range` (each element exactly once over the calls;
    /// the push is complete when all `count` are done). `partial(i)` is final on `range` after it.
    package func finishPush(_ range: Range<Int>) {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= count && range.count <= pendingElements,
            "finishPush of \(range) outside the push under way")
        let n = range.count, o = range.lowerBound
        if n > 0 {
            for step in pending {
                switch step {
                case let .copy(from, into): (into + o).update(from: from + o, count: n)
                case let .add(from, into): VectorOps.add(from + o, into: into + o, count: n)
                }
            }
        }
        pendingElements -= n
        if pendingElements == 0 { pending.removeAll(keepingCapacity: true) }
    }

    private func combineTop() {
        let top = partials.removeLast()
        VectorOps.add(top.pointer, into: partials[partials.count - 1].pointer, count: count)
        let right = nodes.removeLast(), left = nodes[nodes.count - 1]
        nodes[nodes.count - 1] = TreeNode(start: left.start, count: left.count + right.count)
        spare.append(top)
    }

    /// The partial sum of `nodes[i]` (valid until the next push or reset).
    package func partial(_ i: Int) -> UnsafeMutablePointer<Float> { partials[i].pointer }

    /// Writes the total into `destination` (zeros if nothing was pushed). The top-level blocks of
    /// a count that is not a power of two are folded newest into older.
    package func total(into destination: UnsafeMutablePointer<Float>) {
        precondition(pending.isEmpty, "total during an unfinished push")
        guard !partials.isEmpty else {
            destination.update(repeating: 0, count: count)
            return
        }
        while partials.count > 1 { combineTop() }
        destination.update(from: partials[0].pointer, count: count)
    }

    /// Leaves pushed so far.
    package var leafCount: Int { nodes.reduce(0) { $0 + $1.count } }
}
