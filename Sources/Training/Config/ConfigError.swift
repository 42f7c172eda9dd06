/// Why a run configuration could not be loaded. Every case names the file (or other source) so a
/// message read in a terminal says where to look; `invalid` also names the key path.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    /// Nothing exists at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (a directory, no permission, I/O error).
    case unreadable(path: String, reason: String)
    /// The bytes are not JSON.
    case invalidJSON(path: String, reason: String)
    /// The JSON is well formed but a value is missing, of the wrong type, unknown or out of range.
    /// `keyPath` is like `training.betas` or `model.heads` (empty for the document itself).
    case invalid(source: String, keyPath: String, message: String)

    /// The message printed to the user, naming the field and what is wrong with it.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): config file not found"
        case .unreadable(let path, let reason):
            return "\(path): cannot read config file: \(reason)"
        case .invalidJSON(let path, let reason):
            return "\(path): invalid JSON: \(reason)"
        case .invalid(let source, let keyPath, let message):
            return keyPath.isEmpty ? "\(source): \(message)" : "\(source): \(keyPath): \(message)"
        }
    }
}
