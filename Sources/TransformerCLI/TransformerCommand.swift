import ArgumentParser
import TensorCore
import Training

@main
struct TransformerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer",
        abstract: "Translate, evaluate and benchmark Transformer checkpoints.",
        subcommands: [
            Translate.self, Evaluate.self, AverageCommand.self, BleuCommand.self, TokenizerCommand.self, Bench.self,
            PlotCommand.self, KeygenCommand.self, BLASKernelsCommand.self,
        ])
}

/// Runs `body`, turning any error into a message on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    BLASKernels.restartWithFasterKernelsIfNeeded()
    do { try body() } catch let e as ExitCode { throw e } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}

/// `transformer blas-kernels`: prints the OpenBLAS kernel set to force with `OPENBLAS_CORETYPE` on
/// this CPU (empty when OpenBLAS already picks specific kernels). Scripts/test uses it so the test
/// processes, which cannot restart themselves, get the fast kernels too.
struct BLASKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "blas-kernels", shouldDisplay: false)
    @Flag(help: "Print what OpenBLAS chose instead.") var current = false
    func run() {
        print(current ? BLASKernels.coreName : (BLASKernels.recommendedCoreType() ?? ""))
    }
}
