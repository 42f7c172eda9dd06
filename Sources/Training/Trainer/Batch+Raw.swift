import TransformerModel

extension Batch {
    /// A batch from already padded arrays (benchmarks, tests); targetTokens counts non-pad labels.
    package init(
        batchSize: Int, sourceLength: Int, targetLength: Int, source: [Int32], targetInput: [Int32],
        targetOutput: [Int32]
    ) {
        self.batchSize = batchSize
        self.sourceLength = sourceLength
        self.targetLength = targetLength
        self.source = source
        self.targetInput = targetInput
        self.targetOutput = targetOutput
        targetTokens = targetOutput.reduce(0) { $0 + ($1 == SpecialTokens.pad ? 0 : 1) }
    }
}
