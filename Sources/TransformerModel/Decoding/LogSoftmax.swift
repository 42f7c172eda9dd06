import CKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The log-softmax normaliser of a logits row, vectorised: beam search needs it for every row of
/// every step (B*K rows x V), where scalar `expf` cost as much as a fifth of the decoder itself.
package enum LogSoftmax {
    /// log(sum_i exp(row[i])) given `maximum` = max_i row[i]: the exponentials and their 8-lane
    /// sum in C (`ckernels_exp_sum`, the exp the training loss uses). Relative error of the sum is
    /// about 1e-7 per term's exp plus Float32 rounding of the sum.
    package static func logNormalizer(_ row: UnsafePointer<Float>, count: Int, maximum: Float) -> Double {
        Double(maximum) + log(Double(ckernels_exp_sum(row, Int64(count), maximum, nil)))
    }
}
