import TensorCore
import TransformerModel

/// A small padded batch with uneven lengths, built by hand.
struct TestBatch {
    var batch: Int, sourceLength: Int, targetLength: Int
    var source: [Int32], targetInput: [Int32]

    /// Two sequences: source lengths 5 and 3 (padded to 5), target inputs of lengths 4 and 2 (padded to 4).
    static func uneven(vocab: Int) -> TestBatch {
        let v = Int32(vocab)
        let s: [Int32] = [4, 5 % v, 6 % v, 7 % v, 8 % v, 9 % v, 4, 5, 0, 0].map { $0 < 4 && $0 != 0 ? $0 + 4 : $0 }
        let t: [Int32] = [1, 6, 7 % v, 5, 1, 9 % v, 0, 0].map { $0 < 4 && $0 > 1 ? $0 + 4 : $0 }
        return TestBatch(batch: 2, sourceLength: 5, targetLength: 4, source: s, targetInput: t)
    }
}

/// Loss = sum(logits * R) for a fixed R: its gradient w.r.t. logits is R, so model gradients can be
/// checked independently of the real loss.
struct ProjectionLoss {
    let r: [Float]
    init(count: Int, seed: UInt64) {
        var rng = RandomStream(seed: seed, stream: 99)
        r = (0..<count).map { _ in rng.uniform() * 2 - 1 }
    }

    func value(_ model: Transformer, _ b: TestBatch) throws -> Double {
        let logits = try model.forward(
            source: b.source, targetInput: b.targetInput, batchSize: b.batch,
            sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: .disabled)
        var s = 0.0
        for i in 0..<r.count { s += Double(logits[i]) * Double(r[i]) }
        return s
    }

    func gradients(_ model: Transformer, _ b: TestBatch, dropout: DropoutContext = .disabled) throws {
        model.arena.zeroGradients()
        let logits = try model.forward(
            source: b.source, targetInput: b.targetInput, batchSize: b.batch,
            sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: dropout)
        for i in 0..<r.count { logits[i] = r[i] }
        model.backward()
    }
}
