import CZMQ
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A Curve25519 key (public or secret) for CurveZMQ: 32 bytes, written as 40 Z85 characters.
///
/// Not `CustomStringConvertible` on purpose: a secret key must never end up in a log line by
/// accident; `z85` is spelled out where a public key is shown.
public struct CurveKey: Sendable, Hashable {
    /// The 32 key bytes.
    public let bytes: [UInt8]

    /// Decodes 40 Z85 characters; nil for anything else (wrong length, a character outside Z85).
    public init?(z85 text: String) {
        let characters = Array(text.utf8)
        guard characters.count == 40, characters.allSatisfy(CurveKey.isZ85) else { return nil }
        var decoded = [UInt8](repeating: 0, count: 32)
        let ok = (characters.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { source in
            decoded.withUnsafeMutableBufferPointer { zmq_z85_decode($0.baseAddress, source.baseAddress) != nil }
        }
        guard ok else { return nil }
        bytes = decoded
    }

    /// Takes 32 raw bytes (from a ZAP request); nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// The 40-character Z85 text.
    public var z85: String {
        var text = [CChar](repeating: 0, count: 41)
        _ = bytes.withUnsafeBufferPointer { zmq_z85_encode(&text, $0.baseAddress, 32) }
        return String(decoding: text.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The 85 characters of Z85 (ZeroMQ RFC 32).
    private static let alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
    private static func isZ85(_ c: UInt8) -> Bool { alphabet.contains(c) }
}

/// A CurveZMQ identity: a secret key and the public key derived from it.
public struct CurveKeyPair: Sendable, Equatable, CustomStringConvertible {
    /// The public key, shared with peers (`.public` files).
    public let publicKey: CurveKey
    /// The secret key, never sent (`.secret` files, mode 0600).
    public let secretKey: CurveKey

    /// A fresh random key pair (libsodium through `zmq_curve_keypair`).
    public static func generate() throws(CurveKeyError) -> CurveKeyPair {
        try requireCurve()
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw .unavailable(zmqLastError().reason) }
        let text = { (c: [CChar]) in String(decoding: c.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        guard let p = CurveKey(z85: text(pub)), let s = CurveKey(z85: text(sec)) else {
            throw .unavailable("zmq_curve_keypair returned a key that is not 40 Z85 characters")
        }
        return CurveKeyPair(publicKey: p, secretKey: s)
    }

    /// The pair of `secret`: its public key is derived (`zmq_curve_public`), so a secret file is
    /// all a process needs, and a `.public` file copied next to it can never disagree with it.
    public init(secret: CurveKey) throws(CurveKeyError) {
        try CurveKeyPair.requireCurve()
        var pub = [CChar](repeating: 0, count: 41)
        let secretText = Array(secret.z85.utf8CString)
        guard zmq_curve_public(&pub, secretText) == 0,
            let p = CurveKey(z85: String(decoding: pub.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        else {
            throw .unavailable("zmq_curve_public failed: \(zmqLastError().reason)")
        }
        publicKey = p
        secretKey = secret
    }

    private init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Never prints the secret.
    public var description: String { "CurveKeyPair(public: \(publicKey.z85))" }

    // MARK: Files

    /// Writes `BASE.public` and `BASE.secret` (BASE is `DIR/NAME`; DIR is created if missing).
    ///
    /// The secret file is created with mode 0600 by `open(O_CREAT | O_EXCL)` itself, so it is never
    /// readable by others even for an instant, and neither file is ever overwritten. Returns the
    /// two paths written.
    @discardableResult
    public func write(to base: String) throws(CurveKeyError) -> (publicPath: String, secretPath: String) {
        let publicPath = base + ".public", secretPath = base + ".secret"
        for path in [publicPath, secretPath] where FileManager.default.fileExists(atPath: path) {
            throw .exists(path: path)
        }
        let directory = (base as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw .io(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
            }
        }
        // The secret first: if it cannot be written, no orphan public file is left behind.
        try Self.createFile(secretPath, contents: secretKey.z85 + "\n", mode: 0o600)
        do { try Self.createFile(publicPath, contents: publicKey.z85 + "\n", mode: 0o644) } catch {
            unlink(secretPath)
            throw error
        }
        return (publicPath, secretPath)
    }

    /// Creates `path` exclusively with `mode` (the umask can only remove bits) and writes `contents`.
    private static func createFile(_ path: String, contents: String, mode: mode_t) throws(CurveKeyError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 {
            let code = errno
            if code == EEXIST { throw .exists(path: path) }
            throw .io(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            let reason = written < 0 ? String(cString: strerror(errno)) : "short write"
            unlink(path)
            throw .io(path: path, reason: reason)
        }
    }

    /// Reads a secret key file written by `transformer keygen`, refusing one that group or others
    /// may read (like ssh: a key anyone on the host can copy authenticates nothing).
    public static func load(secretFile path: String) throws(CurveKeyError) -> CurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        let mode = info.st_mode & 0o777
        if mode & 0o077 != 0 { throw .unprotected(path: path, mode: Int(mode)) }
        return try CurveKeyPair(secret: readKey(path))
    }

    /// Reads a public key file (one Z85 key, trailing newline allowed).
    public static func load(publicFile path: String) throws(CurveKeyError) -> CurveKey {
        try readKey(path)
    }

    /// One key on one line: 40 Z85 characters, optionally followed by a newline, nothing else.
    static func readKey(_ path: String) throws(CurveKeyError) -> CurveKey {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        // A key file is 41 bytes; refuse to decode anything much larger before looking at it.
        guard data.count <= 64 else {
            throw .malformed(path: path, reason: "\(data.count) bytes; a key file holds one 40-character Z85 key")
        }
        var bytes = [UInt8](data)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard let text = String(bytes: bytes, encoding: .utf8), let key = CurveKey(z85: text) else {
            throw .malformed(
                path: path, reason: "expected one line of 40 Z85 characters (as written by `transformer keygen`)")
        }
        return key
    }

    private static func requireCurve() throws(CurveKeyError) {
        if zmq_has("curve") == 0 {
            throw .unavailable("this libzmq is built without CURVE (libsodium); install a libzmq with CURVE support")
        }
    }
}

/// `write(2)` (the name `write` is taken by `CurveKeyPair.write(to:)` inside the type).
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// The public keys of the workers a coordinator admits (`--allow-workers PATH`).
public struct CurveAllowList: Sendable, Equatable {
    /// The admitted workers' public keys.
    public let keys: Set<CurveKey>

    /// Admits exactly `keys`.
    public init(keys: Set<CurveKey>) { self.keys = keys }

    /// PATH is a directory (every `*.public` file in it, one key each) or a file with one Z85 key
    /// per line (blank lines and lines starting with `#` are skipped). An empty list is an error:
    /// it would admit nobody.
    public static func load(_ path: String) throws(CurveKeyError) -> CurveAllowList {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .io(path: path, reason: "no such file or directory")
        }
        var keys = Set<CurveKey>()
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw .io(path: path, reason: "cannot list: \(error.localizedDescription)")
            }
            for name in names.sorted() where name.hasSuffix(".public") {
                keys.insert(try CurveKeyPair.readKey((path as NSString).appendingPathComponent(name)))
            }
            if keys.isEmpty { throw .emptyAllowList(path: path, reason: "the directory holds no *.public file") }
        } else {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw .io(path: path, reason: "cannot read: \(error.localizedDescription)")
            }
            for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let key = CurveKey(z85: line) else {
                    throw .malformed(
                        path: "\(path):\(index + 1)", reason: "expected a 40-character Z85 public key or a # comment")
                }
                keys.insert(key)
            }
            if keys.isEmpty { throw .emptyAllowList(path: path, reason: "the file lists no key") }
        }
        return CurveAllowList(keys: keys)
    }
}

/// Why a CURVE key or allow list cannot be used; every case names the file.
public enum CurveKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `keygen` would overwrite an existing key file.
    case exists(path: String)
    /// A key file or directory cannot be read or written.
    case io(path: String, reason: String)
    /// A file that does not hold a Z85 CURVE key.
    case malformed(path: String, reason: String)
    /// A secret key file readable by group or others.
    case unprotected(path: String, mode: Int)
    /// An allow list that admits no worker.
    case emptyAllowList(path: String, reason: String)
    /// libzmq was built without CURVE (libsodium), or key generation failed.
    case unavailable(String)

    /// The message printed to the user, naming the key file involved.
    public var description: String {
        switch self {
        case .exists(let p):
            return "\(p) already exists; refusing to overwrite a key (choose another --output or remove it)"
        case let .io(p, r): return "\(p): \(r)"
        case let .malformed(p, r): return "\(p): not a CURVE key file: \(r)"
        case let .unprotected(p, m):
            return "\(p): secret key file is readable by others (mode \(String(m, radix: 8))); run `chmod 600 \(p)`"
        case let .emptyAllowList(p, r): return "\(p): no worker would be admitted: \(r)"
        case .unavailable(let r): return "CURVE is unavailable: \(r)"
        }
    }
}
