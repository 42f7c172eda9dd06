import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Real disk faults for the tests: a small tmpfs of its own, and mount/umount to remount it or
/// bind-mount part of it read-only. Shared by `DiskFaultTests` (in process) and
/// `DiskFaultCommandLineTests` (the real `coordinator`). Mounting needs root (CI runs as root);
/// elsewhere the caller's test is skipped saying so.
package enum TemporaryFileSystem {
    /// Runs mount (or umount, when `arguments` starts with "umount"); nil on success, else its
    /// error output.
    @discardableResult
    package static func command(_ arguments: [String]) throws -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        if arguments.first == "umount" {
            p.executableURL = URL(fileURLWithPath: "/bin/umount")
        }
        p.arguments = arguments.first == "umount" ? Array(arguments.dropFirst()) : arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return p.terminationStatus == 0 ? nil : message
    }

    /// A fresh directory on its own tmpfs of `kilobytes`, unmounted at the end of `test`.
    package static func mount(kilobytes: Int, for test: XCTestCase) throws -> URL {
        guard getuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root (CI runs as root); skipped") }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("diskfault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        if let failure = try command(["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", url.path]) {
            try? FileManager.default.removeItem(at: url)
            throw XCTSkip("mount -t tmpfs is not permitted here (\(failure)); skipped")
        }
        test.addTeardownBlock {
            _ = try? command(["umount", url.path])
            try? FileManager.default.removeItem(at: url)
        }
        return url
    }
}
