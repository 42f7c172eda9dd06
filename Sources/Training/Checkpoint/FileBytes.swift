#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The immutable bytes of a whole file: a read-only memory map of it, or a private copy.
///
/// Mapping is the fast path for checkpoints: pages already in the page cache (a checkpoint that
/// was just written, or read before) are mapped rather than copied, which loads a 400 MB file
/// several times faster than `read` into fresh memory, and the kernel may drop the pages again
/// under memory pressure. Checkpoint files are never modified after they are renamed into place;
/// truncating a file while it is mapped would fault on access, as with any mapped file.
///
/// `@unchecked Sendable`: the memory is never written after initialisation and is released only
/// in `deinit`, when no other reference exists.
final class FileBytes: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
    private let isMapped: Bool

    /// Maps the file at `path`.
    init(mapping path: String) throws(SystemCallFailure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemCallFailure("cannot open", path) }
        defer { _ = close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw SystemCallFailure("cannot stat", path) }
        if (info.st_mode & S_IFMT) != S_IFREG { throw SystemCallFailure("cannot read", path, code: EISDIR) }
        let size = Int(info.st_size)
        guard size > 0 else {
            // mmap rejects empty ranges; an empty file is simply zero bytes.
            buffer = UnsafeRawBufferPointer(
                start: UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8), count: 0)
            isMapped = false
            return
        }
        #if os(Linux)
            let flags = MAP_PRIVATE | MAP_POPULATE  // Populate in one call instead of one fault per page.
        #else
            let flags = MAP_PRIVATE
        #endif
        let address = mmap(nil, size, PROT_READ, flags, fd, 0)
        guard let address, address != MAP_FAILED else { throw SystemCallFailure("cannot map", path) }
        buffer = UnsafeRawBufferPointer(start: address, count: size)
        isMapped = true
    }

    /// A private copy of `bytes`.
    init(copying bytes: [UInt8]) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { memory.copyMemory(from: base, byteCount: source.count) }
        }
        buffer = UnsafeRawBufferPointer(start: memory, count: bytes.count)
        isMapped = false
    }

    deinit {
        guard let base = buffer.baseAddress else { return }
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), buffer.count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    var count: Int { buffer.count }
}
