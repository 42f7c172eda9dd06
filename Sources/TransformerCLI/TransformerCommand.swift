import ArgumentParser
import Training

@main
struct TransformerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer",
        abstract: "Translate, evaluate and benchmark Transformer checkpoints.",
        subcommands: [Translate.self, Evaluate.self, BleuCommand.self, TokenizerCommand.self, Bench.self])
}

/// Runs `body`, turning any error into a message on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}
