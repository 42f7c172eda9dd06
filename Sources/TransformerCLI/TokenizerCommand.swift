import ArgumentParser
import Training

/// `transformer tokenizer train|encode|decode`: the joint BPE tokenizer.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer",
                                                    abstract: "Train or apply a BPE tokenizer (not available yet).")
    @Argument(parsing: .captureForPassthrough) var rest: [String] = []
    func run() throws {
        printError("tokenizer: not available yet")
        throw ExitCode(2)
    }
}
