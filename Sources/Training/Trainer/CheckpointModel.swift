import Foundation
import TensorCore
import TransformerModel

/// A model rebuilt from a checkpoint directory (config from its state.json, weights from
/// model.safetensors), for translation and evaluation.
public struct CheckpointModel {
    /// The run config stored in the checkpoint.
    public let config: RunConfig
    /// The model with the checkpoint's weights (Float32), ready for `forward` or a decoder.
    public let model: Transformer
    /// The checkpoint directory actually loaded (pointers and run directories resolved).
    public let directory: String
    /// The tokenizer hash recorded in state.json (empty for the toy tasks; nil if absent).
    public let tokenizerHash: String?

    /// `path` is a checkpoint directory, a pointer file (`RUN/checkpoints/best` or `latest`), or a
    /// run directory / checkpoints directory whose newest valid checkpoint is used. With
    /// `float16Parameters` the model stores its weight matrices rounded to Float16 (vectors stay
    /// Float32), which decoding reads in place: half the parameter memory and bytes per step.
    public init(path: String, float16Parameters: Bool = false) throws {
        var dir = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            // Never a neighbour instead: a mistyped `RUN/average-last3` must not decode with RUN's latest.
            throw TrainingError.unsupported("checkpoint \(path) does not exist")
        }
        if !isDirectory.boolValue {
            dir = try CheckpointStore.resolvePointer(path)
        } else if !fm.fileExists(atPath: path + "/state.json") {
            // A run directory, or its checkpoints/ directory (whatever the run directory is called).
            let normalised = (path as NSString).standardizingPath
            let parent = (normalised as NSString).deletingLastPathComponent
            let run: String
            if fm.fileExists(atPath: normalised + "/checkpoints") {
                run = normalised
            } else if (normalised as NSString).lastPathComponent == "checkpoints" {
                run = parent.isEmpty ? "." : parent
            } else {
                throw TrainingError.resume(
                    "\(path) is neither a checkpoint directory nor a run directory with checkpoints")
            }
            let search = try CheckpointStore(runDirectory: run).latestValid()
            for s in search.skipped { printError("warning: skipping \(s)") }
            guard let c = search.checkpoint else {
                throw TrainingError.resume("no valid checkpoint under \(run)/checkpoints")
            }
            dir = c.directory
        }
        let loaded = try CheckpointStore.load(directory: dir)
        let state = try loaded.stateObject()
        guard let configObject = state["config"] else { throw TrainingError.resume("\(dir)/state.json has no config") }
        config = try RunConfig.parse(jsonObject: configObject, source: dir + "/state.json")
        model = Transformer(config: config.model, seed: config.training.seed, float16Parameters: float16Parameters)
        if float16Parameters {
            let weights = FloatBuffer(count: model.arena.layout.totalCount)
            try loaded.model.read(layout: model.arena.layout, into: weights.pointer)
            model.loadParameters(from: weights.pointer)
        } else {
            try loaded.model.read(layout: model.arena.layout, into: model.arena.values.pointer)
        }
        directory = dir
        tokenizerHash = state["tokenizer_hash"] as? String
    }
}
