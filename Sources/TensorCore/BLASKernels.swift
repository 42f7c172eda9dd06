import CBLAS
import Foundation

/// Which OpenBLAS kernels this process runs, and the fix for a CPU too new for the installed
/// OpenBLAS.
///
/// Debian 12's OpenBLAS 0.3.21 picks its kernels at load time from the CPU model. A model it does
/// not know (seen here: Intel family 6 model 207, with AVX-512) falls back to the generic
/// "Prescott" kernels: sgemm runs at 31 GFLOP/s on one thread instead of 135 with the SkylakeX
/// kernels on the same core, so training is 2.5x slower than it should be. The choice can only be
/// overridden by `OPENBLAS_CORETYPE` before the library loads, hence the re-exec.
package enum BLASKernels {
    /// The kernel set OpenBLAS chose, e.g. "SkylakeX", "Haswell", "Prescott".
    package static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// A better kernel set than the generic fallback for this CPU, or nil when OpenBLAS already
    /// chose specific kernels (then it is left alone).
    package static func recommendedCoreType(coreName: String = coreName, cpuFlags: Set<String> = cpuFlags()) -> String?
    {
        guard coreName == "Prescott" else { return nil }
        if ["avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    /// The `flags` of the first CPU in /proc/cpuinfo (empty where there is no such file).
    package static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// When OpenBLAS fell back to its generic kernels on a CPU with AVX2 or AVX-512 and the user has
    /// not chosen `OPENBLAS_CORETYPE`, restarts this executable with the right one (same
    /// arguments, same process id). Returns when nothing needs to change or the restart fails.
    /// Call first thing in `main`, before threads exist.
    package static func restartWithFasterKernelsIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["TRANSFORMER_BLAS_RESTARTED"] == nil,
            let core = recommendedCoreType()
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("TRANSFORMER_BLAS_RESTARTED", "1", 1)
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        // Only reached when exec failed: go on with the slow kernels.
        for p in argv { free(p) }
    }
}
