import ArgumentParser
import Training

/// `transformer bleu --hyp FILE --ref FILE`: corpus BLEU and chrF as JSON.
struct BleuCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bleu", abstract: "Corpus BLEU and chrF (not available yet).")
    @Argument(parsing: .captureForPassthrough) var rest: [String] = []
    func run() throws {
        printError("bleu: not available yet")
        throw ExitCode(2)
    }
}
