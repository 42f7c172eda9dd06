import Foundation
import TransformerModel

/// Why `CheckpointAveraging` refused its inputs or output.
package enum CheckpointAveragingError: Error, Equatable, Sendable, CustomStringConvertible {
    case noCheckpoints
    /// `--last N` asked for more checkpoints than the run has.
    case notEnough(requested: Int, found: Int, runDirectory: String)
    /// The same checkpoint directory was given twice.
    case duplicate(String)
    /// `state.json` has no usable config (or tokenizer hash).
    case missingConfig(directory: String, reason: String)
    /// Two checkpoints were not written by the same run configuration (`what` says which part differs).
    case mismatch(first: String, other: String, what: String)
    /// The output would be taken for a training checkpoint.
    case invalidOutput(path: String, reason: String)

    package var description: String {
        switch self {
        case .noCheckpoints: return "no checkpoints to average"
        case let .notEnough(requested, found, run):
            return "cannot average the last \(requested) checkpoints of \(run): it has \(found)"
        case .duplicate(let directory): return "checkpoint \(directory) is given twice"
        case let .missingConfig(directory, reason): return "checkpoint \(directory) cannot be averaged: \(reason)"
        case let .mismatch(first, other, what):
            return "checkpoints \(first) and \(other) are not of one run: \(what); average checkpoints of one run only"
        case let .invalidOutput(path, reason): return "output \(path): \(reason)"
        }
    }
}

/// Parameter averaging of checkpoints of one run, as fairseq's `scripts/average_checkpoints.py`:
/// every tensor of `model.safetensors` becomes the arithmetic mean of that tensor over the
/// checkpoints.
///
/// Arithmetic: for each element, the Float32 values are summed in Float64 in the order the
/// checkpoints are given, the sum is divided by their number in Float64, and the quotient is
/// rounded once to Float32. (fairseq sums in the checkpoints' own precision. The Float64 sum is
/// exact, hence independent of the order, whenever a parameter's values span fewer than 29
/// binary orders of magnitude across the checkpoints, as in nearby checkpoints of one run.)
///
/// Every input is verified first (CRC-32 of all three files, as for resuming), and all must carry
/// the same config hash and tokenizer hash, so the shapes agree by construction; the tensor files
/// are still read against the layout, which refuses any missing, extra or reshaped tensor.
///
/// The output is a checkpoint directory like any other for `translate`, `evaluate` and PyTorch:
/// `model.safetensors` (the averaged weights, the same names, F32), `state.json` (the sources'
/// config verbatim, their config and tokenizer hashes, `step` = the newest source's step, and
/// `averaged_from` listing the sources), and an `optimizer.safetensors` that holds no tensors:
/// averaged Adam moments would not describe any point of training, so resuming from an average is
/// refused (see `TrainingCheckpoint.restore`).
package enum CheckpointAveraging {
    /// The `state.json` key listing the averaged checkpoints; its presence marks an average.
    package static let sourcesKey = "averaged_from"

    /// The newest `count` checkpoint directories of the run in `runDirectory`, oldest first.
    package static func lastCheckpoints(_ count: Int, runDirectory: String) throws -> [String] {
        guard count >= 1 else { throw CheckpointAveragingError.noCheckpoints }
        let listings = try CheckpointStore(runDirectory: runDirectory).list()
        guard listings.count >= count else {
            throw CheckpointAveragingError.notEnough(
                requested: count, found: listings.count, runDirectory: runDirectory)
        }
        return listings.suffix(count).map(\.directory)
    }

    /// One verified source checkpoint.
    private struct Source {
        let checkpoint: LoadedCheckpoint
        let configObject: Any
        let config: RunConfig
        let configHash: String
        let tokenizerHash: String
        /// CRC-32 of its model.safetensors (verified by `CheckpointStore.load`).
        let modelChecksum: String
    }

    private static func source(_ directory: String) throws -> Source {
        let checkpoint = try CheckpointStore.load(directory: directory)
        let state = try checkpoint.stateObject()
        guard let configObject = state["config"] else {
            throw CheckpointAveragingError.missingConfig(
                directory: checkpoint.directory, reason: "state.json has no config")
        }
        let config = try RunConfig.parse(jsonObject: configObject, source: checkpoint.directory + "/state.json")
        guard let tokenizerHash = state["tokenizer_hash"] as? String else {
            throw CheckpointAveragingError.missingConfig(
                directory: checkpoint.directory, reason: "state.json has no tokenizer_hash")
        }
        return Source(
            checkpoint: checkpoint, configObject: configObject, config: config,
            configHash: (state["config_hash"] as? String) ?? config.configHash, tokenizerHash: tokenizerHash,
            modelChecksum: (state["checksums"] as? [String: String])?[CheckpointStateFile.modelFile] ?? "")
    }

    /// Averages the checkpoints in `directories` (at least one) into a new checkpoint directory
    /// `output`, which must not exist and must not be named like a training checkpoint.
    @discardableResult
    package static func average(_ directories: [String], output: String) throws -> WrittenCheckpoint {
        guard !directories.isEmpty else { throw CheckpointAveragingError.noCheckpoints }
        let outputName = (output as NSString).lastPathComponent
        if CheckpointStore.step(fromDirectoryName: outputName) != nil || outputName == "latest" || outputName == "best"
        {
            throw CheckpointAveragingError.invalidOutput(
                path: output,
                reason: "the name \(outputName) is reserved for "
                    + "training checkpoints and pointers; choose another (e.g. RUN/average-last5)")
        }
        var seen: [String: String] = [:]
        for directory in directories {
            let resolved = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
            if seen[resolved] != nil { throw CheckpointAveragingError.duplicate(directory) }
            seen[resolved] = directory
        }
        let sources = try directories.map(source)
        let first = sources[0]
        for other in sources.dropFirst() {
            let (a, b) = (first.checkpoint.directory, other.checkpoint.directory)
            if other.config.model != first.config.model {
                throw CheckpointAveragingError.mismatch(
                    first: a, other: b,
                    what: "the model shapes differ "
                        + "(\(first.config.model) vs \(other.config.model))")
            }
            if other.configHash != first.configHash {
                throw CheckpointAveragingError.mismatch(
                    first: a, other: b,
                    what: "config hash \(first.configHash) "
                        + "vs \(other.configHash)")
            }
            if other.tokenizerHash != first.tokenizerHash {
                throw CheckpointAveragingError.mismatch(
                    first: a, other: b,
                    what: "tokenizer hash "
                        + "\"\(first.tokenizerHash)\" vs \"\(other.tokenizerHash)\"")
            }
        }

        let layout = ParameterLayout(config: first.config.model)
        let count = layout.totalCount
        var sum = [Double](repeating: 0, count: count)
        var values = [Float](repeating: 0, count: count)
        for s in sources {
            try values.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                try s.checkpoint.model.read(layout: layout, into: base)
            }
            for i in 0..<count { sum[i] += Double(values[i]) }
        }
        let n = Double(sources.count)
        for i in 0..<count { values[i] = Float(sum[i] / n) }

        let step = sources.map(\.checkpoint.step).max() ?? 0
        let state: [String: Any] = [
            "step": step,
            "config": first.configObject,
            "config_hash": first.configHash,
            "tokenizer_hash": first.tokenizerHash,
            sourcesKey: sources.map { s -> [String: Any] in
                [
                    "directory": s.checkpoint.directory, "step": s.checkpoint.step,
                    "model_checksum": s.modelChecksum,
                ]
            },
            "averaging": "arithmetic mean of each parameter over \(sources.count) checkpoint(s): Float64 sum in the "
                + "order listed, divided in Float64, rounded once to Float32; optimizer.safetensors holds no tensors",
        ]
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys, .prettyPrinted])
        } catch {
            throw CheckpointError.invalidState("the averaged state cannot be serialised: \(error)")
        }
        return try values.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { throw CheckpointAveragingError.noCheckpoints }
            return try CheckpointStore.writeStandalone(
                directory: output, step: step, model: layout.float32Records(arena: base),
                optimizer: [], state: data)
        }
    }
}
