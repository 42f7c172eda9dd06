import Foundation
import TensorCore

/// A safetensors file mapped into memory and fully validated.
///
/// The whole file is one read-only memory map (see `FileBytes`), so opening costs no copy and no
/// per-tensor allocation; tensors are looked up by name and copied out or viewed in place. Construction checks every structural property
/// (header length, JSON, dtypes, offsets, sizes, contiguity, file length), so a value of this type
/// is always a well-formed file.
package struct SafetensorsFile: Sendable {
    /// The file as the caller named it (used in error messages).
    package let path: String
    /// The header's `__metadata__` (empty when absent).
    package let metadata: [String: String]
    /// Every tensor, in data order (which is the order in which they were written).
    package let tensors: [SafetensorsTensorInfo]
    private let index: [String: Int]
    private let storage: FileBytes
    private let dataStart: Int

    /// Maps and validates the file at `path`.
    package init(path: String) throws(SafetensorsError) {
        let storage: FileBytes
        do throws(SystemCallFailure) {
            storage = try FileBytes(mapping: path)
        } catch {
            throw SafetensorsError(path: path, problem: .io(operation: error.operation, reason: error.reason))
        }
        try self.init(storage: storage, path: path)
    }

    /// Validates a file's bytes already in memory (copied); `path` only names it in errors.
    package init(bytes: [UInt8], path: String) throws(SafetensorsError) {
        try self.init(storage: FileBytes(copying: bytes), path: path)
    }

    init(storage: FileBytes, path: String) throws(SafetensorsError) {
        let bytes = storage.buffer
        func fail(_ problem: SafetensorsError.Problem) -> SafetensorsError {
            SafetensorsError(path: path, problem: problem)
        }
        guard bytes.count >= 8 else { throw fail(.fileTooSmall(size: bytes.count)) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail(.headerLengthBeyondFile(headerLength: headerLength, fileSize: bytes.count))
        }
        let dataStart = 8 + Int(headerLength)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(
                with: Data(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])))
        } catch {
            throw fail(.invalidJSON(SafetensorsFile.shortReason(error)))
        }
        guard let header = parsed as? [String: Any] else { throw fail(.invalidJSON("the top level is not an object")) }

        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let fields = value as? [String: String] else { throw fail(.invalidMetadata) }
                metadata = fields
                continue
            }
            tensors.append(try SafetensorsFile.parseEntry(name: name, value: value, path: path))
        }
        // Ties (several empty tensors at one offset) are ordered by name so the order is stable.
        tensors.sort {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
                < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name)
        }
        var cursor = 0
        var previous = ""
        for tensor in tensors {
            let begin = tensor.dataOffsets.lowerBound
            if begin < cursor { throw fail(.overlappingTensors(previous, tensor.name)) }
            if begin > cursor { throw fail(.gapBeforeTensor(tensor: tensor.name, gapBytes: begin - cursor)) }
            cursor = tensor.dataOffsets.upperBound
            previous = tensor.name
        }
        let dataSize = bytes.count - dataStart
        if cursor > dataSize {
            throw fail(.truncated(expectedFileSize: dataStart + cursor, actualFileSize: bytes.count))
        }
        if cursor < dataSize { throw fail(.trailingBytes(count: dataSize - cursor)) }

        self.path = path
        self.metadata = metadata
        self.tensors = tensors
        self.storage = storage
        self.dataStart = dataStart
        var index: [String: Int] = [:]
        for (i, tensor) in tensors.enumerated() { index[tensor.name] = i }
        self.index = index
    }

    private static func parseEntry(name: String, value: Any, path: String) throws(SafetensorsError)
        -> SafetensorsTensorInfo
    {
        func invalid(_ reason: String) -> SafetensorsError {
            SafetensorsError(path: path, problem: .invalidEntry(tensor: name, reason: reason))
        }
        guard let entry = value as? [String: Any] else { throw invalid("entry is not an object") }
        guard let dtypeName = entry["dtype"] as? String else { throw invalid("missing or non-string \"dtype\"") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError(path: path, problem: .unknownDType(tensor: name, dtype: dtypeName))
        }
        guard let shape = integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
            throw invalid("\"shape\" is not an array of non-negative integers")
        }
        guard let offsets = integers(entry["data_offsets"]), offsets.count == 2 else {
            throw invalid("\"data_offsets\" is not an array of two integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw SafetensorsError(path: path, problem: .offsetsOutOfRange(tensor: name, begin: begin, end: end))
        }
        var expected = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
            if overflow { throw invalid("shape \(shape) is too large") }
            expected = product
        }
        if end - begin != expected {
            throw SafetensorsError(
                path: path,
                problem: .sizeMismatch(
                    tensor: name, expectedBytes: expected,
                    actualBytes: end - begin))
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Integers only: fractions, strings and numbers beyond Int's range are rejected. (Foundation
    /// cannot tell `true` from `1` here; that ambiguity is harmless.)
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let integer = element as? Int else { return nil }
            result.append(integer)
        }
        return result
    }

    private static func shortReason(_ error: Error) -> String {
        let text = String(describing: error)
        return text.count > 200 ? String(text.prefix(200)) + "..." : text
    }

    // MARK: Access

    /// The tensor called `name`, or nil.
    package subscript(name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// Total file size in bytes.
    package var fileSize: Int { storage.count }

    private func info(_ name: String) throws(SafetensorsError) -> SafetensorsTensorInfo {
        guard let info = self[name] else { throw SafetensorsError(path: path, problem: .missingTensor(name)) }
        return info
    }

    /// A copy of the tensor's raw bytes.
    package func bytes(of name: String) throws(SafetensorsError) -> [UInt8] {
        let info = try info(name)
        return Array(
            storage.buffer[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }

    /// Copies an F32 or F16 tensor into `destination` as Float32 after checking its shape.
    package func copyFloats(named name: String, shape: [Int], into destination: UnsafeMutablePointer<Float>)
        throws(SafetensorsError)
    {
        let info = try info(name)
        guard info.shape == shape else {
            throw SafetensorsError(
                path: path, problem: .shapeMismatch(tensor: name, expected: shape, actual: info.shape))
        }
        let count = info.elementCount
        guard info.dtype == .f32 || info.dtype == .f16 else {
            throw SafetensorsError(
                path: path, problem: .dtypeMismatch(tensor: name, expected: [.f32, .f16], actual: info.dtype))
        }
        guard count > 0, let base = storage.buffer.baseAddress else { return }
        let source = base + dataStart + info.dataOffsets.lowerBound
        if info.dtype == .f32 {
            // memcpy tolerates a data section that is not 4-byte aligned (hand-made files).
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        } else if Int(bitPattern: source) % 2 == 0 {
            Half.decode(source.bindMemory(to: UInt16.self, capacity: count), destination, count: count)
        } else {
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { halves.deallocate() }
            UnsafeMutableRawPointer(halves).copyMemory(from: source, byteCount: count * 2)
            Half.decode(halves, destination, count: count)
        }
    }

    /// An F32 or F16 tensor as Float32 values.
    package func floats(named name: String) throws(SafetensorsError) -> [Float] {
        let info = try info(name)
        var failure: SafetensorsError?
        let values = [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            do throws(SafetensorsError) {
                if let base = buffer.baseAddress { try copyFloats(named: name, shape: info.shape, into: base) }
                initialized = info.elementCount
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return values
    }
}
