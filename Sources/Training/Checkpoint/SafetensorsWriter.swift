/// Writes safetensors files by streaming from the callers' memory: the header is built in memory,
/// tensor data goes from the given pointers to the file in chunks, so writing a 400 MB file needs
/// no 400 MB staging buffer.
package enum SafetensorsWriter {
    /// Chunk size for checksumming and writing: small enough that the checksum pass leaves the
    /// chunk in cache for the write system call's copy.
    static let chunkBytes = 1 << 20

    /// Writes `tensors` in the given order (contiguous, no padding between them) to `path`,
    /// replacing any existing file, and returns the CRC-32 of the whole file.
    ///
    /// - Parameters:
    ///   - metadata: the header's `__metadata__` object (omitted when empty).
    ///   - sync: fsync the file before returning (the caller still syncs the directory).
    @discardableResult
    package static func write(
        _ tensors: [TensorRecord], metadata: [String: String] = [:], to path: String,
        sync: Bool = true
    ) throws(SafetensorsError) -> UInt32 {
        let header = try header(for: tensors, metadata: metadata, path: path)
        var crc = CRC32()
        do throws(SystemCallFailure) {
            let file = try Posix.OutputFile(creating: path)
            crc.update(header)
            try file.write(header)
            for tensor in tensors {
                var offset = 0
                while offset < tensor.bytes.count {
                    let end = Swift.min(offset + chunkBytes, tensor.bytes.count)
                    let chunk = UnsafeRawBufferPointer(rebasing: tensor.bytes[offset..<end])
                    crc.update(chunk)
                    try file.write(chunk)
                    offset = end
                }
            }
            if sync { try file.sync() }
            try file.close()
        } catch {
            throw SafetensorsError(path: path, problem: .io(operation: error.operation, reason: error.reason))
        }
        return crc.value
    }

    /// The 8-byte length followed by the space-padded JSON header, after checking the records.
    package static func header(
        for tensors: [TensorRecord], metadata: [String: String] = [:],
        path: String = "<memory>"
    ) throws(SafetensorsError) -> [UInt8] {
        var json = "{"
        var first = true
        func separator() -> String {
            defer { first = false }
            return first ? "" : ","
        }
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { key in
                jsonString(key) + ":" + jsonString(metadata[key] ?? "")
            }
            json += separator() + "\"__metadata__\":{" + fields.joined(separator: ",") + "}"
        }
        var names = Set<String>()
        var offset = 0
        for tensor in tensors {
            func invalid(_ reason: String) -> SafetensorsError {
                SafetensorsError(path: path, problem: .invalidRecord(tensor: tensor.name, reason: reason))
            }
            if tensor.name == "__metadata__" { throw invalid("the name is reserved for metadata") }
            if !names.insert(tensor.name).inserted { throw invalid("duplicate name") }
            if tensor.shape.contains(where: { $0 < 0 }) { throw invalid("negative dimension in shape \(tensor.shape)") }
            let expected = tensor.shape.reduce(tensor.dtype.byteSize, *)
            if tensor.bytes.count != expected {
                throw invalid(
                    "shape \(tensor.shape) of \(tensor.dtype.rawValue) needs \(expected) bytes, got \(tensor.bytes.count)"
                )
            }
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json +=
                separator() + jsonString(tensor.name) + ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + expected)]}"
            offset += expected
        }
        json += "}"
        var body = Array(json.utf8)
        body.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - body.count % 8) % 8))
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + body.count)
        withUnsafeBytes(of: UInt64(body.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: body)
        return bytes
    }

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String { JSONText.quoted(s) }
}
