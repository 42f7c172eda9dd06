/// A growable buffer of Bool flags ("true = may attend"), reused across steps.
final class MaskBuffer {
    private(set) var pointer: UnsafeMutablePointer<Bool>
    private var capacity: Int

    init() {
        capacity = 1
        pointer = .allocate(capacity: 1)
    }
    deinit { pointer.deallocate() }

    /// Marks every non-padding token of `tokens[0..<count]`.
    func fill(fromTokens tokens: UnsafePointer<Int32>, count: Int) {
        reserve(count)
        for i in 0..<count { pointer[i] = AttentionMask.isVisible(tokens[i]) }
    }

    /// Copies each of the `sequences` rows of `mask` ([sequences, length]) to `repeats`
    /// consecutive rows (row `s * repeats + k`), as beam search spreads a source over its beams.
    func fill(repeating mask: UnsafePointer<Bool>, sequences: Int, length: Int, repeats: Int) {
        reserve(sequences * repeats * length)
        for s in 0..<sequences {
            for k in 0..<repeats {
                (pointer + (s * repeats + k) * length).update(from: mask + s * length, count: length)
            }
        }
    }

    /// Grows the allocation to `count` flags when needed (contents then unspecified).
    private func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        capacity = count
        pointer = .allocate(capacity: count)
    }
}
