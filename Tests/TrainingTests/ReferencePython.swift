import Foundation

/// The Python that the cross-checks against reference packages (tokenizers, sacrebleu,
/// tensorboard) run: `TRANSFORMER_TEST_PYTHON` (set by .ci/run to its venv), else `python3`.
enum ReferencePython {
    static var path: String { ProcessInfo.processInfo.environment["TRANSFORMER_TEST_PYTHON"] ?? "python3" }

    /// Runs it with `arguments` (standard output discarded) and returns its exit status.
    static func run(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [path] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
