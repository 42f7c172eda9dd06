import TransformerModel

/// One padded micro-batch of (source, target) pairs, row-major, ready for the model.
///
/// Decoder input is `BOS + y` and labels are `y + EOS`, both padded with PAD (0) to
/// `targetLength = max(len(y)) + 1`; sources are padded to their longest row. The model derives
/// its masks from the PAD positions.
package struct Batch: Sendable, Equatable {
    package let batchSize: Int
    package let sourceLength: Int
    package let targetLength: Int
    /// `[batchSize * sourceLength]` source tokens.
    package let source: [Int32]
    /// `[batchSize * targetLength]` decoder inputs: BOS then the target.
    package let targetInput: [Int32]
    /// `[batchSize * targetLength]` labels: the target then EOS.
    package let targetOutput: [Int32]
    /// Number of non-pad labels (the loss's token count).
    package let targetTokens: Int

    /// Pads `pairs` into one batch. Lengths are at least 1 so that no tensor has a zero
    /// dimension (an empty source becomes one PAD, which the masks hide).
    package init(pairs: [(source: [Int32], target: [Int32])]) {
        let pad = SpecialTokens.pad
        batchSize = pairs.count
        sourceLength = Swift.max(1, pairs.map(\.source.count).max() ?? 0)
        targetLength = (pairs.map(\.target.count).max() ?? 0) + 1
        var source = [Int32](repeating: pad, count: batchSize * sourceLength)
        var targetInput = [Int32](repeating: pad, count: batchSize * targetLength)
        var targetOutput = [Int32](repeating: pad, count: batchSize * targetLength)
        var tokens = 0
        for (b, pair) in pairs.enumerated() {
            let s = b * sourceLength, t = b * targetLength
            for (i, token) in pair.source.enumerated() { source[s + i] = token }
            targetInput[t] = SpecialTokens.bos
            for (i, token) in pair.target.enumerated() {
                targetInput[t + 1 + i] = token
                targetOutput[t + i] = token
            }
            targetOutput[t + pair.target.count] = SpecialTokens.eos
            tokens += pair.target.count + 1
        }
        self.source = source
        self.targetInput = targetInput
        self.targetOutput = targetOutput
        targetTokens = tokens
    }

    /// Padded tokens in the larger of the two sides, the quantity a token budget bounds.
    package var paddedTokens: Int { batchSize * Swift.max(sourceLength, targetLength) }
}
