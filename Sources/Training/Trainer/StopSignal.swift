import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Graceful stop on SIGINT/SIGTERM: the first signal asks the training loop to finish the current
/// step, write a checkpoint and the summary, and exit; a second signal ends the process at once.
package enum StopSignal {
    private static let requested = Atomic<Bool>(false)

    /// True once a stop was requested (checked by the loop between steps).
    package static var isRequested: Bool { requested.load(ordering: .relaxed) }

    package static func request() { requested.store(true, ordering: .relaxed) }

    /// Installs the handlers (idempotent).
    package static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                if StopSignal.requested.exchange(true, ordering: .relaxed) {
                    _exit(128 + s)  // second signal: leave now
                }
                let msg = "\nstop requested: finishing this step and writing a checkpoint (signal again to quit now)\n"
                _ = msg.withCString { write(2, $0, strlen($0)) }
            }
        }
    }
}
