import ArgumentParser
import Training

@main
struct TransformerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer",
        abstract: "Translate, evaluate and benchmark Transformer checkpoints.",
        subcommands: [Translate.self, Evaluate.self, Bench.self, Tokenizer.self])
}

/// Runs `body`, turning any error into a message on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}

struct Tokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train or apply a BPE tokenizer (not available yet).")
    @Argument(parsing: .captureForPassthrough) var rest: [String] = []
    func run() throws {
        printError("tokenizer: not available yet (the translation task is a later milestone)")
        throw ExitCode(2)
    }
}
