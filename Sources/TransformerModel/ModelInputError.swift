/// Why a batch cannot be fed to the model; the message names the offending value.
public enum ModelInputError: Error, Equatable, CustomStringConvertible {
    /// A token id outside [0, vocab_size).
    case tokenOutOfRange(sequence: String, index: Int, token: Int32, vocabSize: Int)
    /// A sequence longer than `model.max_len`.
    case sequenceTooLong(sequence: String, length: Int, maxLen: Int)
    /// A token array whose length is not batch size x sequence length.
    case shapeMismatch(sequence: String, expected: Int, actual: Int)
    /// A batch size or sequence length of 0.
    case empty

    /// The message printed to the user.
    public var description: String {
        switch self {
        case let .tokenOutOfRange(s, i, t, v):
            return "\(s) token \(t) at position \(i) is outside the vocabulary [0, \(v))"
        case let .sequenceTooLong(s, l, m):
            return "\(s) length \(l) exceeds model.max_len \(m)"
        case let .shapeMismatch(s, e, a):
            return "\(s) has \(a) tokens, expected batch x length = \(e)"
        case .empty:
            return "empty batch"
        }
    }
}
