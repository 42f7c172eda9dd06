import TensorCore

extension TrainingSession {
    /// What the workers multiply d(sum of token losses)/d(logits) by in a step of `microBatches`
    /// micro-batches, and what the coordinator divides the summed gradient by (with the token count).
    ///
    /// With Float16 gradients: the loss scale divided by the step's token budget (`batch_tokens x
    /// microBatches`, known to everyone before the step). Gradients here are of the token SUM, so
    /// this makes the scale mean what it means for a mean loss (as in PyTorch's GradScaler): at the
    /// initial 2^16 the scaled gradients of the toy configs stay well inside Float16's range, where
    /// the raw sum times 2^16 would overflow for the first several steps. 1 without Float16 gradients.
    package func gradientMultiplier(microBatches: Int) -> Float {
        guard lossScale.isDynamic else { return 1 }
        return lossScale.scale / Float(Swift.max(1, config.training.batchTokens * microBatches))
    }
}
