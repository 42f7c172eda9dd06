#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells whether a process is accepting connections on a Unix-domain socket path.
enum UnixSocketProbe {
    static func hasListener(path: String) -> Bool {
        // Abstract-namespace names ("@name") are never unlinked by libzmq: its own bind reports a clash.
        guard !path.isEmpty, !path.hasPrefix("@") else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }  // libzmq reports the long name itself
        withUnsafeMutableBytes(of: &address.sun_path) { destination in
            for (i, byte) in pathBytes.enumerated() { destination[i] = byte }
            destination[pathBytes.count] = 0
        }
        #if canImport(Glibc)
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0
    }
}
