import Foundation
import Training
import TransformerModel

extension FuzzTarget {
    /// The model of the seed checkpoint (Tests/FuzzTargetsTests/FuzzCorpus/micro.json): loading reads the
    /// parameters and both Adam moments into arenas of this layout, as a resume does.
    package static let checkpointModel = ModelConfig(
        vocabSize: 8, dModel: 4, heads: 1, dFF: 8, encoderLayers: 1,
        decoderLayers: 1, maxLen: 8)
    private static let checkpointLayout = ParameterLayout(config: checkpointModel)

    /// `SafetensorsFile(bytes:)` and every read a resume makes from it.
    static let safetensors = FuzzTarget(
        name: "safetensors", summary: "SafetensorsFile: header, offsets, tensor reads",
        isJSON: false
    ) { bytes in
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(bytes: bytes, path: "fuzz.safetensors")
        } catch {
            _ = "\(error)"
            return .rejected
        }
        var end = 0
        for tensor in file.tensors {
            fuzzInvariant(
                tensor.dataOffsets.lowerBound == end, "tensor \(tensor.name) does not start where the previous ended")
            end = tensor.dataOffsets.upperBound
            do {
                let raw = try file.bytes(of: tensor.name)
                fuzzInvariant(
                    raw.count == tensor.elementCount * tensor.dtype.byteSize,
                    "tensor \(tensor.name) has \(raw.count) bytes")
                if tensor.dtype == .f32 || tensor.dtype == .f16 {
                    fuzzInvariant(
                        try file.floats(named: tensor.name).count == tensor.elementCount, "floats of \(tensor.name)")
                }
            } catch {
                fuzzInvariant(false, "validated tensor \(tensor.name) cannot be read: \(error)")
            }
        }
        fuzzInvariant(8 + end <= file.fileSize, "tensors end beyond the file")
        let arena = UnsafeMutablePointer<Float>.allocate(capacity: checkpointLayout.totalCount)
        defer { arena.deallocate() }
        arena.initialize(repeating: 0, count: checkpointLayout.totalCount)
        for prefix in ["", "exp_avg.", "exp_avg_sq."] {
            do { try file.read(layout: checkpointLayout, into: arena, prefix: prefix) } catch { _ = "\(error)" }
        }
        return .accepted
    }

    /// `state.json` as `CheckpointStore.load` and a resume read it: checksums, format, step, the
    /// saved config and the loss-scale state.
    static let stateJSON = FuzzTarget(
        name: "state-json", summary: "state.json: checksums, step, saved config, loss scale",
        isJSON: true
    ) { input in
        var bytes = input
        let parsed: CheckpointStateFile.Parsed
        do throws(CheckpointDefect) {
            do throws(CheckpointDefect) {
                parsed = try CheckpointStateFile.parse(bytes)
            } catch .checksumMismatch(file: "state.json", let expected, let actual) {
                // Almost every mutant breaks the state's CRC; fixing it (as a PNG fuzzer fixes
                // chunk CRCs) lets the mutants reach the checks behind it.
                guard
                    let fixed = replacingLast(
                        Array("\"state\": \"\(expected)\"".utf8), with: Array("\"state\": \"\(actual)\"".utf8),
                        in: bytes)
                else { throw CheckpointDefect.checksumMismatch(file: "state.json", expected: expected, actual: actual) }
                bytes = fixed
                parsed = try CheckpointStateFile.parse(bytes)
            }
        } catch {
            _ = "\(error)"
            return .rejected
        }
        _ = (parsed.step, parsed.modelChecksum, parsed.optimizerChecksum)
        guard let state = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            fuzzInvariant(false, "a parsed state.json is not an object on the second read")
            return .rejected
        }
        if let saved = state["config"] {
            do { _ = try RunConfig.parse(jsonObject: saved, source: "fuzz/state.json") } catch { _ = "\(error)" }
        }
        if let lossScale = state["loss_scale"] as? [String: Any] {
            do { _ = try LossScaleState(jsonObject: lossScale, source: "fuzz/state.json") } catch { _ = "\(error)" }
        }
        return .accepted
    }

    /// `bytes` with the last occurrence of `pattern` replaced, or nil when it has none.
    private static func replacingLast(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= pattern.count else { return nil }
        for start in stride(from: bytes.count - pattern.count, through: 0, by: -1)
        where bytes[start..<(start + pattern.count)].elementsEqual(pattern) {
            return Array(bytes[..<start]) + replacement + bytes[(start + pattern.count)...]
        }
        return nil
    }
}
