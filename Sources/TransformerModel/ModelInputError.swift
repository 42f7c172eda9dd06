/// Why a batch cannot be fed to the model; the message names the offending value.
public enum ModelInputError: Error, Equatable, CustomStringConvertible {
    case tokenOutOfRange(sequence: String, index: Int, token: Int32, vocabSize: Int)
    case sequenceTooLong(sequence: String, length: Int, maxLen: Int)
    case shapeMismatch(sequence: String, expected: Int, actual: Int)
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
