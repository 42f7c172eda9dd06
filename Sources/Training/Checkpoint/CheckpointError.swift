/// Why a checkpoint directory cannot be used.
package enum CheckpointDefect: Error, Equatable, Sendable, CustomStringConvertible {
    case missingFile(String)
    case unreadableFile(String, reason: String)
    case checksumMismatch(file: String, expected: String, actual: String)
    /// `state.json` is not a JSON object or lacks a required field.
    case invalidState(String)
    case unsupportedFormat(Int)
    /// The step in the directory name and the one in `state.json` differ.
    case stepMismatch(directoryStep: Int, stateStep: Int)
    /// A safetensors file is malformed (its checksum matched, so it was written that way).
    case invalidTensors(file: String, SafetensorsError)

    package var description: String {
        switch self {
        case .missingFile(let name): return "\(name) is missing"
        case .unreadableFile(let name, let reason): return "cannot read \(name): \(reason)"
        case .checksumMismatch(let file, let expected, let actual):
            return "\(file) checksum mismatch (expected \(expected), got \(actual))"
        case .invalidState(let reason): return "state.json is invalid: \(reason)"
        case .unsupportedFormat(let format):
            return "state.json has format \(format), this program reads format \(CheckpointStore.format)"
        case .stepMismatch(let directoryStep, let stateStep):
            return "the directory name says step \(directoryStep) but state.json says step \(stateStep)"
        case .invalidTensors(let file, let error): return "\(file) is malformed: \(error.problemDescription)"
        }
    }
}

/// A checkpoint that cannot be written, found or loaded, with the path involved.
package enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `directory` holds no checkpoint.
    case notFound(directory: String)
    case corrupt(directory: String, CheckpointDefect)
    /// A pointer file (`checkpoints/latest` or `checkpoints/best`, `path` says which) is missing,
    /// unreadable or does not name a checkpoint directory.
    case invalidLatestPointer(path: String, reason: String)
    /// The checkpoint `path` cannot be written: a file or directory cannot be created, written,
    /// synced, renamed or removed (`reason` names which).
    case cannotWrite(path: String, reason: String)
    /// The checkpoints directory cannot be listed.
    case cannotRead(path: String, reason: String)
    /// The caller's state is not a JSON object or uses a key the store reserves.
    case invalidState(String)
    case invalidArgument(String)

    package var description: String {
        switch self {
        case .notFound(let directory): return "checkpoint \(directory) does not exist"
        case .corrupt(let directory, let defect): return "checkpoint \(directory) is corrupt: \(defect)"
        case .invalidLatestPointer(let path, let reason): return "checkpoint pointer \(path) is unusable: \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write checkpoint \(path): \(reason)"
        case .cannotRead(let path, let reason): return "cannot read checkpoints in \(path): \(reason)"
        case .invalidState(let reason): return "invalid checkpoint state: \(reason)"
        case .invalidArgument(let reason): return "invalid checkpoint request: \(reason)"
        }
    }
}

extension CheckpointError {
    static func cannotWrite(_ checkpoint: String, _ failure: SystemCallFailure) -> CheckpointError {
        .cannotWrite(path: checkpoint, reason: failure.description)
    }
}
