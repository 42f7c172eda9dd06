import ArgumentParser
import Distributed
import Training

/// `transformer keygen --output DIR/NAME`: a CURVE key pair for a coordinator or a worker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract:
            "Create a CURVE key pair: NAME.public (give it to the other side) and NAME.secret (mode 0600, keep it).")

    @Option(
        help:
            "DIR/NAME: writes DIR/NAME.public and DIR/NAME.secret (DIR is created; existing files are never overwritten)."
    )
    var output: String

    func validate() throws {
        if output.isEmpty || output.hasSuffix("/") {
            throw ValidationError("--output needs a file name, e.g. keys/worker-1")
        }
    }

    func run() throws {
        do {
            let (publicPath, secretPath) = try CurveKeyPair.generate().write(to: output)
            printLine(
                "wrote \(publicPath) (public: give it to the other side) and \(secretPath) (secret, mode 0600: keep it on this host)"
            )
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
