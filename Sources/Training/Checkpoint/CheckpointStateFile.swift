import Foundation

/// Builds and checks `state.json`: the caller's JSON object, byte for byte, with the store's
/// fields appended before its closing brace:
///
///     <caller's object without its final "}">,
///       "checksums": {"model.safetensors": "<crc>", "optimizer.safetensors": "<crc>", "state": "<crc>"},
///       "checksum_algorithm": "crc32",
///       "format": 1
///     }
///
/// Appending rather than re-serialising keeps the caller's text verbatim (number formatting,
/// 64-bit integers such as RNG state, key order). The "state" checksum covers the caller's part
/// (everything before the appended fields, minus trailing whitespace and the separating comma),
/// so a flipped digit in the step or data cursor is detected like one in the tensors.
package enum CheckpointStateFile {
    static let modelFile = "model.safetensors"
    static let optimizerFile = "optimizer.safetensors"
    static let reservedKeys = ["checksums", "checksum_algorithm", "format"]
    private static let marker = Array("\"checksums\": {\"\(modelFile)\": ".utf8)

    /// The caller's state, validated and ready to receive the checksums.
    struct Prepared {
        /// The caller's text up to (not including) its closing brace, trailing whitespace removed.
        let body: [UInt8]

        func file(modelChecksum: UInt32, optimizerChecksum: UInt32) -> [UInt8] {
            let separator = body.last == UInt8(ascii: "{") ? "" : ","
            let suffix =
                separator + "\n  \"checksums\": {\"\(modelFile)\": \"\(CRC32.hex(modelChecksum))\", "
                + "\"\(optimizerFile)\": \"\(CRC32.hex(optimizerChecksum))\", "
                + "\"state\": \"\(CRC32.hex(CRC32.checksum(body)))\"},\n"
                + "  \"checksum_algorithm\": \"crc32\",\n  \"format\": \(CheckpointStore.format)\n}\n"
            return body + Array(suffix.utf8)
        }
    }

    /// Checks the caller's state; a "step" field, if present, must equal `step` because loading
    /// compares it with the directory name.
    static func prepare(_ state: Data, step: Int) throws(CheckpointError) -> Prepared {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: state)
        } catch {
            throw .invalidState("state is not valid JSON: \(error)")
        }
        guard let fields = object as? [String: Any] else { throw .invalidState("state is not a JSON object") }
        for key in reservedKeys where fields[key] != nil {
            throw .invalidState("the key \"\(key)\" is reserved for the checkpoint store")
        }
        if let value = fields["step"], (value as? Int) != step {
            throw .invalidState("\"step\" in the state is \(value), but the checkpoint is for step \(step)")
        }
        // The store appends UTF-8; UTF-16 or UTF-32 text (which has NUL bytes) would be mixed up.
        guard !state.contains(0) else { throw .invalidState("state must be UTF-8 JSON text") }
        var body = [UInt8](state)
        trimTrailingWhitespace(&body)
        // A valid JSON object's text ends with its closing brace.
        guard body.last == UInt8(ascii: "}") else { throw .invalidState("state does not end with \"}\"") }
        body.removeLast()
        trimTrailingWhitespace(&body)
        return Prepared(body: body)
    }

    /// What `load` needs from a `state.json`.
    package struct Parsed {
        package let step: Int?
        package let modelChecksum: String
        package let optimizerChecksum: String
    }

    /// Parses and verifies a `state.json` (package-visible for the fuzz target `state-json`).
    package static func parse(_ bytes: [UInt8]) throws(CheckpointDefect) -> Parsed {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw .invalidState("not valid JSON (truncated or damaged)")
        }
        guard let fields = object as? [String: Any] else { throw .invalidState("not a JSON object") }
        guard let format = fields["format"] as? Int else { throw .invalidState("no \"format\" field") }
        guard format == CheckpointStore.format else { throw .unsupportedFormat(format) }
        guard let checksums = fields["checksums"] as? [String: String] else {
            throw .invalidState("no \"checksums\" object")
        }
        func checksum(_ key: String) throws(CheckpointDefect) -> String {
            guard let value = checksums[key] else { throw .invalidState("no checksum for \(key)") }
            return value
        }
        let expectedState = try checksum("state")
        guard let body = callerBody(bytes) else {
            throw .invalidState("the checksums are not where the store writes them")
        }
        let actualState = CRC32.hex(CRC32.checksum(body))
        guard actualState == expectedState else {
            throw .checksumMismatch(file: "state.json", expected: expectedState, actual: actualState)
        }
        var step: Int?
        if let value = fields["step"] {
            guard let integer = value as? Int else { throw .invalidState("\"step\" is not an integer") }
            step = integer
        }
        return Parsed(
            step: step, modelChecksum: try checksum(modelFile), optimizerChecksum: try checksum(optimizerFile))
    }

    /// Recovers the `Prepared.body` the store checksummed. The caller's text precedes the
    /// appended fields, so the last occurrence of the marker is the store's own.
    private static func callerBody(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= marker.count else { return nil }
        var start = bytes.count - marker.count
        while start >= 0 {
            if bytes[start] == marker[0] && bytes[start..<(start + marker.count)].elementsEqual(marker) { break }
            start -= 1
        }
        guard start >= 0 else { return nil }
        var body = Array(bytes[..<start])
        trimTrailingWhitespace(&body)
        if body.last == UInt8(ascii: ",") { body.removeLast() }
        return body
    }

    private static func trimTrailingWhitespace(_ bytes: inout [UInt8]) {
        while let last = bytes.last, last == 0x20 || last == 0x0A || last == 0x0D || last == 0x09 { bytes.removeLast() }
    }
}
