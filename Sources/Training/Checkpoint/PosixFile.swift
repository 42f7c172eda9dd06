#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed system call: which operation, on which path, and the operating system's reason.
struct SystemCallFailure: Error, CustomStringConvertible, Sendable {
    let operation: String
    let path: String
    let code: Int32

    init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    var reason: String { String(cString: strerror(code)) }
    var description: String { "\(operation) \(path): \(reason)" }
    var isNotFound: Bool { code == ENOENT }
}

/// Thin wrappers over POSIX calls; Foundation's file APIs do not expose fsync or errno.
enum Posix {
    /// A file opened for writing. Closing is explicit so that close errors (which can report a
    /// failed delayed write on some file systems) are not lost; `deinit` only cleans up after an
    /// earlier failure.
    final class OutputFile {
        let path: String
        private var descriptor: Int32

        /// Creates (or truncates) `path`.
        init(creating path: String) throws(SystemCallFailure) {
            self.path = path
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor < 0 { throw SystemCallFailure("cannot create", path) }
        }

        deinit { if descriptor >= 0 { _ = systemClose(descriptor) } }

        func write(_ bytes: UnsafeRawBufferPointer) throws(SystemCallFailure) {
            guard var cursor = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let written = Posix.systemWrite(descriptor, cursor, remaining)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SystemCallFailure("cannot write", path)
                }
                cursor += written
                remaining -= written
            }
        }

        func write(_ bytes: [UInt8]) throws(SystemCallFailure) {
            var failure: SystemCallFailure?
            bytes.withUnsafeBytes { buffer in
                do throws(SystemCallFailure) { try write(buffer) } catch { failure = error }
            }
            if let failure { throw failure }
        }

        func sync() throws(SystemCallFailure) {
            if fsync(descriptor) != 0 { throw SystemCallFailure("cannot fsync", path) }
        }

        func close() throws(SystemCallFailure) {
            let result = systemClose(descriptor)
            descriptor = -1
            if result != 0 { throw SystemCallFailure("cannot close", path) }
        }
    }

    private static func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        // Linux transfers at most 0x7ffff000 bytes per call; smaller calls also keep signals responsive.
        write(fd, pointer, Swift.min(count, 1 << 30))
    }

    /// Writes a whole small file and makes it durable.
    static func writeDurably(_ bytes: [UInt8], to path: String) throws(SystemCallFailure) {
        let file = try OutputFile(creating: path)
        try file.write(bytes)
        try file.sync()
        try file.close()
    }

    /// Reads a whole file into memory with one allocation.
    static func readFile(_ path: String) throws(SystemCallFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemCallFailure("cannot open", path) }
        defer { _ = systemClose(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw SystemCallFailure("cannot stat", path) }
        let size = Int(info.st_size)
        var failure: SystemCallFailure?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            while initialized < size {
                let got = read(fd, base + initialized, Swift.min(size - initialized, 1 << 30))
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = SystemCallFailure("cannot read", path)
                    return
                }
                if got == 0 { return }  // The file shrank since fstat; the caller sees the short length.
                initialized += got
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Flushes a directory's entries (new names, renames, removals) to disk.
    static func syncDirectory(_ path: String) throws(SystemCallFailure) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw SystemCallFailure("cannot open directory", path) }
        defer { _ = systemClose(fd) }
        // A few file systems do not support fsync on directories; there is nothing more to do there.
        if fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP {
            throw SystemCallFailure("cannot fsync directory", path)
        }
    }

    static func rename(_ from: String, _ to: String) throws(SystemCallFailure) {
        if systemRename(from, to) != 0 { throw SystemCallFailure("cannot rename \(from) to", to) }
    }

    static func makeDirectory(_ path: String) throws(SystemCallFailure) {
        if mkdir(path, 0o755) != 0 { throw SystemCallFailure("cannot create directory", path) }
    }

    /// Creates `path` and its missing parents; an existing directory is fine.
    static func makeDirectories(_ path: String) throws(SystemCallFailure) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 {
            guard errno == EEXIST else { throw SystemCallFailure("cannot create directory", path) }
            // Another process may have created it meanwhile; anything else by that name is in the way.
            if !isDirectory(path) { throw SystemCallFailure("cannot create directory", path, code: ENOTDIR) }
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// nil when the path does not exist.
    static func fileType(_ path: String) throws(SystemCallFailure) -> mode_t? {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SystemCallFailure("cannot stat", path)
        }
        return info.st_mode & S_IFMT
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names in a directory, without "." and "..".
    static func listDirectory(_ path: String) throws(SystemCallFailure) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallFailure("cannot list directory", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree; a missing path is not an error.
    static func removeTree(_ path: String) throws(SystemCallFailure) {
        guard let type = try fileType(path) else { return }
        if type == S_IFDIR {
            for name in try listDirectory(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw SystemCallFailure("cannot remove directory", path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SystemCallFailure("cannot remove", path)
        }
    }

    static var processID: Int32 { getpid() }

    /// Whether a process with this id exists (used to recognise stale temporary directories).
    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

// The module-level `close` and `rename` are shadowed by the members above; these aliases reach them.
@inline(__always) private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
@inline(__always) private func systemRename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
