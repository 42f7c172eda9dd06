import Foundation

/// UTF-8 text split into lines the way the tokenizer tools need it.
public struct TextLines: Sendable {
    /// The lines, in order: the valid ones, and with `keepingInvalid` the others with their bad
    /// bytes replaced by U+FFFD.
    public var lines: [String]
    /// Lines that were not valid UTF-8 (left out, or repaired with `keepingInvalid`).
    public var invalidLines: Int

    /// Splits on "\n" bytes only (so "\r\n" and lone "\r" inside a line are not grapheme-merged as
    /// Swift's `Character` split would do), drops one trailing "\r" per line, keeps empty lines, and
    /// does not start a line after a final "\n". Lines that are not valid UTF-8 are counted; they
    /// are left out, or with `keepingInvalid` kept with U+FFFD for their bad bytes, so that line i
    /// of an output still answers line i of the input (translate, tokenizer encode/decode).
    public init(utf8 data: Data, keepingInvalid: Bool = false) {
        var lines: [String] = []
        var invalid = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            func emit(_ end: Int) {
                var stop = end
                if stop > start, bytes[stop - 1] == 0x0D { stop -= 1 }
                if let line = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self) {
                    lines.append(line)
                } else {
                    invalid += 1
                    if keepingInvalid {
                        lines.append(
                            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self))
                    }
                }
            }
            for i in 0..<bytes.count where bytes[i] == 0x0A {
                emit(i)
                start = i + 1
            }
            if start < bytes.count { emit(bytes.count) }
        }
        self.lines = lines
        self.invalidLines = invalid
    }

    /// The lines of the file at `path`.
    public init(contentsOfFile path: String) throws(TokenizerError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .cannotRead(path: path, reason: isDirectory.boolValue ? "is a directory" : "no such file")
        }
        do {
            self.init(utf8: try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .cannotRead(path: path, reason: error.localizedDescription)
        }
    }
}
