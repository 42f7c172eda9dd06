/// A growable buffer of Bool flags ("true = may attend"), reused across steps.
final class MaskBuffer {
    private(set) var pointer: UnsafeMutablePointer<Bool>
    private var capacity: Int

    init() { capacity = 1; pointer = .allocate(capacity: 1) }
    deinit { pointer.deallocate() }

    /// Marks every non-padding token of `tokens[0..<count]`.
    func fill(fromTokens tokens: UnsafePointer<Int32>, count: Int) {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
        }
        for i in 0..<count { pointer[i] = AttentionMask.isVisible(tokens[i]) }
    }
}
