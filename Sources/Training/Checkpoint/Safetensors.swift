// The safetensors format (https://github.com/huggingface/safetensors):
//
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   UTF-8 JSON: {"__metadata__": {string: string},
//                          "NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//             padded with spaces so that the data starts on an 8-byte boundary
//   the data  every tensor's bytes, row-major little-endian, offsets relative to the data start,
//             contiguous and non-overlapping
//
// `SafetensorsWriter` writes it, `SafetensorsFile` reads and validates it.

/// Element types of the safetensors format (the strings are the format's own names).
package enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case u16 = "U16", i16 = "I16", f16 = "F16", bf16 = "BF16"
    case u32 = "U32", i32 = "I32", f32 = "F32"
    case u64 = "U64", i64 = "I64", f64 = "F64"

    /// Bytes per element.
    package var byteSize: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .u16, .i16, .f16, .bf16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        }
    }
}

/// One tensor to write: a name, a shape, an element type and the caller's memory holding it.
///
/// The writer reads `bytes` directly (no copy), so the caller keeps that memory valid and
/// unchanged for the duration of the write call.
package struct TensorRecord {
    package let name: String
    package let shape: [Int]
    package let dtype: SafetensorsDType
    package let bytes: UnsafeRawBufferPointer

    package init(name: String, shape: [Int], dtype: SafetensorsDType, bytes: UnsafeRawBufferPointer) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.bytes = bytes
    }

    /// A Float32 tensor of `shape.reduce(1, *)` elements starting at `pointer`.
    package init(name: String, shape: [Int], float32 pointer: UnsafePointer<Float>) {
        let count = shape.reduce(1, *)
        self.init(
            name: name, shape: shape, dtype: .f32,
            bytes: UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride))
    }
}

/// Where a tensor lives inside a safetensors file.
package struct SafetensorsTensorInfo: Sendable, Equatable {
    package let name: String
    package let dtype: SafetensorsDType
    package let shape: [Int]
    /// Byte range relative to the start of the data section (the header's `data_offsets`).
    package let dataOffsets: Range<Int>

    package init(name: String, dtype: SafetensorsDType, shape: [Int], dataOffsets: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
    }

    package var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file that cannot be written or read, naming the file and what is wrong with it.
package struct SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What is wrong, precisely enough for tests and messages.
    package enum Problem: Equatable, Sendable {
        /// The file cannot be opened, read, written or synced; `reason` is the operating system's.
        case io(operation: String, reason: String)
        /// The file is shorter than the 8-byte header length field.
        case fileTooSmall(size: Int)
        /// The header length field points past the end of the file.
        case headerLengthBeyondFile(headerLength: UInt64, fileSize: Int)
        /// The header is not a UTF-8 JSON object.
        case invalidJSON(String)
        /// `__metadata__` is not an object of strings.
        case invalidMetadata
        /// A tensor entry lacks a field or has one of the wrong type.
        case invalidEntry(tensor: String, reason: String)
        case unknownDType(tensor: String, dtype: String)
        /// `data_offsets` is not a range [begin, end] with 0 <= begin <= end.
        case offsetsOutOfRange(tensor: String, begin: Int, end: Int)
        /// The byte range does not hold shape x dtype size bytes.
        case sizeMismatch(tensor: String, expectedBytes: Int, actualBytes: Int)
        case overlappingTensors(String, String)
        /// The data section has bytes that belong to no tensor, before `tensor`.
        case gapBeforeTensor(tensor: String, gapBytes: Int)
        /// The tensors end beyond the end of the file.
        case truncated(expectedFileSize: Int, actualFileSize: Int)
        /// The file continues after the last tensor.
        case trailingBytes(count: Int)
        /// Looking up a tensor that is not in the file.
        case missingTensor(String)
        /// The file has a tensor the reader's parameter layout does not know.
        case unexpectedTensor(String)
        case dtypeMismatch(tensor: String, expected: [SafetensorsDType], actual: SafetensorsDType)
        case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
        /// A record handed to the writer is inconsistent (duplicate name, wrong byte count, ...).
        case invalidRecord(tensor: String, reason: String)
    }

    /// The file as the caller named it.
    package let path: String
    package let problem: Problem

    package init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    package var description: String { "safetensors file \(path): \(problemDescription)" }

    /// The problem alone, without the file name.
    package var problemDescription: String {
        switch problem {
        case .io(let operation, let reason): return "\(operation): \(reason)"
        case .fileTooSmall(let size):
            return "file is \(size) bytes, too small for the 8-byte header length (truncated or not safetensors)"
        case .headerLengthBeyondFile(let length, let size):
            return "header length \(length) exceeds the file size \(size) (truncated or not safetensors)"
        case .invalidJSON(let reason): return "header is not valid JSON: \(reason)"
        case .invalidMetadata: return "__metadata__ is not an object of string values"
        case .invalidEntry(let tensor, let reason): return "tensor \"\(tensor)\": \(reason)"
        case .unknownDType(let tensor, let dtype): return "tensor \"\(tensor)\" has unknown dtype \"\(dtype)\""
        case .offsetsOutOfRange(let tensor, let begin, let end):
            return "tensor \"\(tensor)\" has data_offsets [\(begin), \(end)] out of range"
        case .sizeMismatch(let tensor, let expected, let actual):
            return "tensor \"\(tensor)\" spans \(actual) bytes but its shape and dtype need \(expected)"
        case .overlappingTensors(let a, let b): return "tensors \"\(a)\" and \"\(b)\" overlap"
        case .gapBeforeTensor(let tensor, let gap):
            return "\(gap) bytes belonging to no tensor before tensor \"\(tensor)\""
        case .truncated(let expected, let actual):
            return "file is truncated: the header describes \(expected) bytes, the file has \(actual)"
        case .trailingBytes(let count): return "\(count) unexpected bytes after the last tensor"
        case .missingTensor(let name): return "no tensor named \"\(name)\""
        case .unexpectedTensor(let name): return "tensor \"\(name)\" is not a parameter of this model"
        case .dtypeMismatch(let tensor, let expected, let actual):
            let names = expected.map(\.rawValue).joined(separator: " or ")
            return "tensor \"\(tensor)\" has dtype \(actual.rawValue), expected \(names)"
        case .shapeMismatch(let tensor, let expected, let actual):
            return "tensor \"\(tensor)\" has shape \(actual), expected \(expected)"
        case .invalidRecord(let tensor, let reason): return "cannot write tensor \"\(tensor)\": \(reason)"
        }
    }
}
