import Foundation

extension CheckpointStore {
    /// Rewrites the checkpoint of `step` with its `state.json` fields passed through `edit`,
    /// copying both tensor files unchanged and recomputing every checksum; `latest` then names
    /// it. For tests that need a checkpoint in a given state (one from an older version without
    /// some field, or with a chosen best validation). Nothing is pruned.
    @discardableResult
    package func rewriteState(step: Int, _ edit: (inout [String: Any]) -> Void) throws -> WrittenCheckpoint {
        let loaded = try Self.load(directory: checkpointsDirectory + "/" + Self.directoryName(step: step))
        var state = try loaded.stateObject()
        for key in CheckpointStateFile.reservedKeys { state[key] = nil }
        edit(&state)
        let model = try TensorCopy(loaded.model), optimizer = try TensorCopy(loaded.optimizer)
        return try model.withRecords { modelRecords in
            try optimizer.withRecords { optimizerRecords in
                try write(step: step, model: modelRecords, optimizer: optimizerRecords, state: state, keep: Int.max)
            }
        }
    }
}

/// The tensors of a safetensors file copied into one buffer, to be written again.
private struct TensorCopy {
    let bytes: [UInt8]
    let entries: [(name: String, shape: [Int], dtype: SafetensorsDType, range: Range<Int>)]

    init(_ file: SafetensorsFile) throws {
        var bytes: [UInt8] = []
        var entries: [(name: String, shape: [Int], dtype: SafetensorsDType, range: Range<Int>)] = []
        for t in file.tensors {
            let start = bytes.count
            bytes += try file.bytes(of: t.name)
            entries.append((t.name, t.shape, t.dtype, start..<bytes.count))
        }
        self.bytes = bytes
        self.entries = entries
    }

    func withRecords<R>(_ body: ([TensorRecord]) throws -> R) throws -> R {
        try bytes.withUnsafeBytes { raw in
            try body(
                entries.map {
                    TensorRecord(
                        name: $0.name, shape: $0.shape, dtype: $0.dtype,
                        bytes: UnsafeRawBufferPointer(rebasing: raw[$0.range]))
                })
        }
    }
}
