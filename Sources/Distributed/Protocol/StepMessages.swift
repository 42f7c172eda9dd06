import Training

/// coordinator -> worker: compute these global micro-batches of `step`, then send their gradient
/// sums (as `gradients` buckets and one `stepStats`, all tagged with `attempt`). Header: step,
/// rank, attempt; value 0: the gradient multiplier's Float32 bits; value 1: the first position.
/// Payload: the micro-batch indices (Int64).
package struct WorkOrder: Sendable, Equatable {
    package var step: Int
    /// The worker's rank.
    package var rank: Int
    /// The coordinator's attempt number: it counts up with every plan it sends (from 1), so a
    /// re-plan of the step after a lost worker has a new one and answers to the old plan are
    /// ignored.
    package var attempt: Int
    /// What the worker multiplies its loss by before backward (`TrainingSession.gradientMultiplier`:
    /// the loss scale of Float16 gradients over the step's micro-batches; 1 without).
    package var gradientMultiplier: Float
    /// Position of `microBatches[0]` among the step's micro-batches (the rest follow it): where
    /// the worker's sums sit in the step's canonical tree.
    package var firstPosition: Int
    /// Global micro-batch indices, in the order they are to be accumulated.
    package var microBatches: [Int]

    package init(
        step: Int, rank: Int, attempt: Int = 0, gradientMultiplier: Float = 1, firstPosition: Int = 0,
        microBatches: [Int]
    ) {
        self.step = step
        self.rank = rank
        self.attempt = attempt
        self.gradientMultiplier = gradientMultiplier
        self.firstPosition = firstPosition
        self.microBatches = microBatches
    }

    init(header: MessageHeader, payload: Frame) throws(ProtocolError) {
        let words = payload.int64Words()
        if let bad = words.first(where: { $0 < 0 }) {
            throw .invalidField(kind: .work, field: "micro-batch index", value: bad, reason: "is negative")
        }
        let (multiplierBits, firstPosition, _, _) = header.values
        self.init(
            step: try header.nonNegative("step", header.step), rank: try header.nonNegative("rank", header.rank),
            attempt: try header.nonNegative("attempt", header.attempt),
            gradientMultiplier: Float(bitPattern: UInt32(truncatingIfNeeded: multiplierBits)),
            firstPosition: try header.nonNegative("first position", firstPosition), microBatches: words.map { Int($0) })
    }

    func encode(into header: inout MessageHeader) -> Frame {
        header.payloadType = .int64
        header.step = Int64(step)
        header.rank = Int64(rank)
        header.attempt = Int64(attempt)
        header.values.0 = Int64(gradientMultiplier.bitPattern)
        header.values.1 = Int64(firstPosition)
        return Frame(int64Words: microBatches.map { Int64($0) })
    }
}

/// worker -> coordinator: the sums that go with one gradient. Header: step, rank, attempt;
/// values 0-3: tokens, correct, loss sum and NLL sum as Float64 bits; flag bit 0: finite. No payload.
package struct StepStatistics: Sendable, Equatable {
    package var step: Int
    package var rank: Int
    /// Echoes `WorkOrder.attempt`.
    package var attempt: Int
    package var loss: LossStatistics
    /// Every value of the worker's gradient sum and loss was finite.
    package var finite: Bool

    package init(step: Int, rank: Int, attempt: Int = 0, loss: LossStatistics, finite: Bool) {
        self.step = step
        self.rank = rank
        self.attempt = attempt
        self.loss = loss
        self.finite = finite
    }

    init(header: MessageHeader) throws(ProtocolError) {
        let (tokens, correct, lossBits, nllBits) = header.values
        let loss = LossStatistics(
            lossSum: Double(bitPattern: UInt64(bitPattern: lossBits)),
            nllSum: Double(bitPattern: UInt64(bitPattern: nllBits)),
            tokens: try header.nonNegative("tokens", tokens), correct: try header.nonNegative("correct", correct))
        self.init(
            step: try header.nonNegative("step", header.step), rank: try header.nonNegative("rank", header.rank),
            attempt: try header.nonNegative("attempt", header.attempt), loss: loss, finite: header.flags & 1 != 0)
    }

    func encode(into header: inout MessageHeader) {
        header.step = Int64(step)
        header.rank = Int64(rank)
        header.attempt = Int64(attempt)
        header.flags = finite ? 1 : 0
        header.values = (
            Int64(loss.tokens), Int64(loss.correct),
            Int64(bitPattern: loss.lossSum.bitPattern), Int64(bitPattern: loss.nllSum.bitPattern)
        )
    }
}

/// Both ways: "I am alive". Header: step, rank; value 0: the sender's monotonic clock in
/// nanoseconds. No payload.
package struct Heartbeat: Sendable, Equatable {
    /// The sender's current step.
    package var step: Int
    package var rank: Int
    /// The sender's monotonic clock (e.g. `DispatchTime.now().uptimeNanoseconds`), for round trips.
    package var nanoseconds: UInt64

    package init(step: Int, rank: Int, nanoseconds: UInt64) {
        self.step = step
        self.rank = rank
        self.nanoseconds = nanoseconds
    }

    init(header: MessageHeader) throws(ProtocolError) {
        self.init(
            step: try header.nonNegative("step", header.step), rank: try header.nonNegative("rank", header.rank),
            nanoseconds: UInt64(bitPattern: header.values.0))
    }

    func encode(into header: inout MessageHeader) {
        header.step = Int64(step)
        header.rank = Int64(rank)
        header.values.0 = Int64(bitPattern: nanoseconds)
    }
}
