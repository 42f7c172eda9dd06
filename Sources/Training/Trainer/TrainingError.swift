/// Failures of a training run that a user can act on; each message says what went wrong and where.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// A request this program cannot serve (a missing tokenizer, an option the task does not take).
    case unsupported(String)
    /// The run directory cannot be created or written.
    case runDirectory(path: String, reason: String)
    /// The run cannot resume from the checkpoint asked for.
    case resume(String)
    /// Input data that cannot be read or turned into a batch.
    case invalidBatch(String)
    /// The run ended but its final checkpoint (or `best` pointer) could not be written.
    case checkpointNotWritten(String)

    /// The message printed to the user.
    public var description: String {
        switch self {
        case .unsupported(let m): return m
        case let .runDirectory(path, reason): return "run directory \(path): \(reason)"
        case .resume(let m): return "cannot resume: \(m)"
        case .invalidBatch(let m): return "invalid batch: \(m)"
        case .checkpointNotWritten(let m): return "the run ended without its final checkpoint: \(m)"
        }
    }
}
