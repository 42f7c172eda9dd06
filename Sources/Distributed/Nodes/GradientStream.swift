import TensorCore
import Training

/// Sends a worker's gradient buckets for one work order as soon as each is final, from the compute
/// thread while backward still runs (`ReplicaTrainer.computeGradientParts(whenFinal:)`), and keeps
/// the step's finite flag over what it sent.
///
/// A bucket leaves when every value in it is final: for the last tree node, during the last
/// micro-batch's backward, from the end of the arena towards its start (the last layers first;
/// bucket 0, which holds the shared embedding, at the very end); the other nodes of a non-aligned
/// run when the last micro-batch starts. `TensorBucket` copies the values into its frame, and
/// nothing writes a range again once it was reported final, so what is sent is what the step
/// computed. Sends go through `SocketThread.send`, which posts to the socket thread's mailbox
/// (safe from any thread); the statistics go after the last bucket, in the same queue.
///
/// Used by one compute at a time: filled on the compute queue while the actor awaits it, then
/// read by the actor once the compute has returned, so there is never concurrent access.
final class GradientStream {
    private let socket: SocketThread
    private let plan: BucketPlan
    private let step: Int, rank: Int, attempt: Int
    private let type: TensorElementType
    /// Test hook `injectNonFiniteAtStep`: the first node's value 0 is made infinite before it is sent.
    private let injectNonFinite: Bool
    private var firstNode: TreeNode?
    /// Per node: the highest bucket index not yet sent (buckets leave from the last one down).
    private var nextBucket: [TreeNode: Int] = [:]
    /// Every value sent so far is finite (as it arrives: a Float16 overflow counts).
    private(set) var finite = true
    /// When each bucket and the statistics left, and when the compute ended (`now()` seconds).
    private(set) var timeline: GradientSendTimeline
    /// Set by the compute as it starts, on the worker's compute thread.
    var computeStarted: Double {
        get { timeline.computeStarted }
        set { timeline.computeStarted = newValue }
    }
    /// Set by the compute when `computeGradientParts` has returned (its backward is over).
    var computeEnded: Double {
        get { timeline.computeEnded }
        set { timeline.computeEnded = newValue }
    }

    init(
        socket: SocketThread, plan: BucketPlan, order: WorkOrder, rank: Int, type: TensorElementType,
        injectNonFinite: Bool
    ) {
        self.socket = socket
        self.plan = plan
        step = order.step
        self.rank = rank
        attempt = order.attempt
        self.type = type
        self.injectNonFinite = injectNonFinite
        timeline = GradientSendTimeline(step: order.step, rank: rank)
        firstNode = TreeNode.cover(order.firstPosition..<(order.firstPosition + order.microBatches.count)).first
    }

    /// Sends the buckets of `node`'s sum that lie wholly at offsets >= `from` and are not sent yet.
    func sendFinal(_ node: TreeNode, _ values: UnsafeMutablePointer<Float>, from: Int) {
        var b = nextBucket[node] ?? plan.bucketCount - 1
        while b >= 0, plan.bucket(b).offset >= from {
            send(node, values, bucket: plan.bucket(b))
            b -= 1
        }
        nextBucket[node] = b
    }

    /// After the compute: sends whatever was not sent yet (nothing, when the compute reported its
    /// whole arena final), then the statistics.
    func finish(parts: [(node: TreeNode, values: UnsafeMutablePointer<Float>)], stats: LossStatistics) {
        for part in parts { sendFinal(part.node, part.values, from: 0) }
        socket.send(
            .stepStats(
                StepStatistics(
                    step: step, rank: rank, attempt: attempt, loss: stats,
                    finite: finite && stats.lossSum.isFinite)))
        timeline.statisticsSent = now()
    }

    private func send(_ node: TreeNode, _ values: UnsafeMutablePointer<Float>, bucket: BucketPlan.Bucket) {
        if injectNonFinite, node == firstNode, bucket.index == 0, bucket.count > 0 { values[0] = .infinity }
        let start = values + bucket.offset
        // Finite as sent: a value that overflows Float16 arrives as inf, so it counts as an overflow.
        let ok =
            type == .float16
            ? Float16Rounding.isFiniteAfterRounding(start, count: bucket.count)
            : VectorOps.allFinite(start, count: bucket.count)
        if !ok { finite = false }
        socket.send(
            .gradients(
                TensorBucket(
                    step: step, rank: rank, attempt: attempt, node: node, bucket: bucket,
                    of: plan, from: values, as: type)))
        timeline.buckets.append(.init(node: node, bucket: bucket.index, seconds: now()))
    }
}

/// When a worker's gradient left for one work order (`now()` seconds, a monotonic clock shared by
/// the processes of one machine), for tests and measurements (`WorkerOptions.gradientSendObserver`).
package struct GradientSendTimeline: Sendable {
    package struct Send: Sendable, Equatable {
        package let node: TreeNode
        package let bucket: Int
        package let seconds: Double
    }
    package let step: Int
    package let rank: Int
    /// Every bucket sent, in order.
    package var buckets: [Send] = []
    /// When the compute started on the worker's compute thread.
    package var computeStarted = 0.0
    /// When `computeGradientParts` returned: its last backward was over.
    package var computeEnded = 0.0
    /// When the step's statistics were sent (after every bucket).
    package var statisticsSent = 0.0
}
