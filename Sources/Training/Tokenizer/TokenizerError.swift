/// Everything that can go wrong while training, loading or saving a `BPETokenizer`.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A tokenizer or text file could not be read (missing, unreadable, a directory).
    case cannotRead(path: String, reason: String)
    /// The file could not be written.
    case cannotWrite(path: String, reason: String)
    /// The file is not well-formed JSON; `offset` is the byte offset of the problem.
    case invalidJSON(path: String, offset: Int, reason: String)
    /// The JSON is valid but describes a tokenizer this implementation does not reproduce exactly.
    case unsupported(path: String, what: String)
    /// The JSON describes an inconsistent BPE model (missing token, duplicate id, ...).
    case invalidModel(path: String, reason: String)
    /// The requested vocabulary cannot even hold the special tokens and the alphabet.
    case vocabSizeTooSmall(requested: Int, minimum: Int)
    /// Training found no text at all.
    case emptyCorpus

    /// The message printed to the user, naming the file involved.
    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .cannotWrite(path, reason): return "cannot write tokenizer file \(path): \(reason)"
        case let .invalidJSON(path, offset, reason):
            return "tokenizer file \(path) is not valid JSON (byte \(offset)): \(reason)"
        case let .unsupported(path, what): return "tokenizer file \(path) is not supported: \(what)"
        case let .invalidModel(path, reason): return "tokenizer file \(path) is inconsistent: \(reason)"
        case let .vocabSizeTooSmall(requested, minimum):
            return "vocabulary size \(requested) is too small: the 4 special tokens and the alphabet of the "
                + "corpus need at least \(minimum)"
        case .emptyCorpus: return "the training text contains no words"
        }
    }
}
