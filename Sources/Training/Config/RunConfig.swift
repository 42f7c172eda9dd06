import Foundation
import TransformerModel

/// One training run's configuration: a validated `configs/NAME.json`.
///
/// Load with `RunConfig.load(path:)`. Every key is checked: unknown keys, wrong types, non-integer
/// integers and out-of-range values are `ConfigError.invalid` naming the key path. Required keys:
/// `name`; `model.vocab_size`, `d_model`, `heads`, `d_ff`, `encoder_layers`, `decoder_layers`;
/// `training.batch_tokens`, `max_steps`; `data.task` (plus the task's own keys, see `DataConfig`).
/// Everything else has a default, documented on `TrainingConfig` and below for the model.
///
/// Model defaults: `dropout` 0.1 (in [0, 1)), `max_len` 64, `norm` `"pre"` (or `"post"`),
/// `tie_embeddings` true, `positional` `"sinusoidal"` (or `"learned"`). `heads` must divide
/// `d_model`, `d_model` must be even with sinusoidal positions, `vocab_size` must exceed the 4
/// special tokens.
public struct RunConfig: Sendable, Equatable {
    /// Names the run (default run directory `runs/<name>`): letters, digits, `.`, `_`, `-`.
    public let name: String
    /// The architecture (`model`).
    public let model: ModelConfig
    /// Optimization, schedule, validation and checkpoint settings (`training`).
    public let training: TrainingConfig
    /// The task and its files (`data`).
    public let data: DataConfig
    /// The config object as given (with any `with(...)` overrides applied), serialised
    /// canonically: compact, keys sorted, numbers in shortest round-trip form. Defaults are NOT
    /// filled in. Checkpoints embed it as `state.json`'s `"config"`; `configHash` digests it.
    package let rawJSON: Data

    /// Validates an in-memory configuration (for tests and tools that build one in code). The
    /// resulting `rawJSON` spells out every key.
    public init(name: String, model: ModelConfig, training: TrainingConfig, data: DataConfig) throws {
        let document = RunConfigEncoding.document(name: name, model: model, training: training, data: data)
        self = try RunConfig(document: document, source: "RunConfig(name: \"\(name)\")")
    }

    private init(document: ConfigJSON, source: String) throws {
        (name, model, training, data) = try RunConfigParser.parse(document, source: source)
        rawJSON = Data(document.canonicalText.utf8)
    }

    /// Reads and validates a config file. `path` is used as given (relative to the current
    /// directory) and appears in every error message.
    public static func load(path: String) throws -> RunConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError.fileNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw ConfigError.unreadable(path: path, reason: "it is a directory") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError.unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(data: data, source: path)
    }

    /// Like `load(path:)`, but a bare name without `/` or `.json` (`--config tiny`) that is not a
    /// file in the current directory means `configs/<name>.json`.
    public static func load(nameOrPath: String) throws -> RunConfig {
        let isBareName = !nameOrPath.contains("/") && !nameOrPath.hasSuffix(".json")
        if isBareName && !FileManager.default.fileExists(atPath: nameOrPath) {
            return try load(path: "configs/\(nameOrPath).json")
        }
        return try load(path: nameOrPath)
    }

    /// Validates config JSON held in memory; `source` names it in error messages (a file path, or
    /// e.g. `"runs/copy/checkpoints/step-00000200/state.json"` when reading a checkpoint).
    public static func parse(data: Data, source: String) throws -> RunConfig {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ConfigError.invalidJSON(path: source, reason: jsonErrorReason(error, data: data))
        }
        return try parse(jsonObject: object, source: source)
    }

    /// Validates an object already produced by `JSONSerialization` (e.g. the `"config"` member of a
    /// checkpoint's `state.json`).
    public static func parse(jsonObject: Any, source: String) throws -> RunConfig {
        guard let document = ConfigJSON(foundationObject: jsonObject) else {
            throw ConfigError.invalidJSON(path: source, reason: "not a JSON value")
        }
        return try RunConfig(document: document, source: source)
    }

    /// A copy with command-line overrides applied (`--seed`, `--max-steps`, the bench's
    /// `--activation-checkpointing` and `--float16`). The overrides are written into `rawJSON`,
    /// so checkpoints record, and `configHash` covers, what actually ran. Revalidated, so e.g.
    /// `maxSteps: 0` is reported as `training.max_steps`.
    public func with(
        seed: UInt64? = nil, maxSteps: Int? = nil, activationCheckpointing: Bool? = nil,
        float16: Float16Options? = nil
    ) throws -> RunConfig {
        guard let original = try? JSONSerialization.jsonObject(with: rawJSON),
            let parsed = ConfigJSON(foundationObject: original),
            case .object(var root) = parsed, case .object(var training)? = root["training"]
        else {
            // rawJSON always holds a validated object; reaching this means it was corrupted in memory.
            throw ConfigError.invalidJSON(
                path: "RunConfig(name: \"\(name)\")", reason: "rawJSON is not a config object")
        }
        if let seed { training["seed"] = RunConfigEncoding.unsigned(seed) }
        if let maxSteps { training["max_steps"] = .integer(Int64(maxSteps)) }
        if let activationCheckpointing { training["activation_checkpointing"] = .bool(activationCheckpointing) }
        if let float16 { training["float16"] = RunConfigEncoding.float16(float16) }
        root["training"] = .object(training)
        return try RunConfig(document: .object(root), source: "overrides of \(name)")
    }

    /// `training.best_metric`, or the task's default when the key is absent: `bleu` for
    /// translation with `data.bleu_every` >= 1, else `loss`.
    public var bestMetric: BestMetric {
        training.bestMetric ?? (data.task == .translation && data.bleuEvery > 0 ? .bleu : .loss)
    }

    /// A stable digest of `rawJSON` (FNV-1a 64, 16 lowercase hex digits). Coordinator and workers
    /// compare it in the handshake; it changes whenever any value of the config changes, and not
    /// when only key order or whitespace of the file does.
    package var configHash: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in rawJSON {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Foundation's messages say "around character N"; a line and column is what an editor needs.
    private static func jsonErrorReason(_ error: Error, data: Data) -> String {
        let nsError = error as NSError
        let detail = (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
        guard let range = detail.range(of: "character ") else { return detail }
        let digits = detail[range.upperBound...].prefix { $0.isNumber }
        guard let offset = Int(digits), offset <= data.count else { return detail }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return "\(detail) (line \(line), column \(column))"
    }
}
