import Distributed
import Foundation
import FuzzTargets

// Two builds of one file. `Scripts/fuzz` builds it with `-sanitize=fuzzer -D LIBFUZZER` into its
// own scratch path: `main` then runs libFuzzer's driver on the target named by $FUZZ_TARGET. The
// normal `swift build` makes the deterministic mutation driver (no libFuzzer needed).

#if LIBFUZZER

    private let selected: FuzzTarget? = ProcessInfo.processInfo.environment["FUZZ_TARGET"].flatMap(FuzzTarget.named)

    /// libFuzzer's entry for programs that keep their own `main` (compiler-rt FuzzerDriver.cpp).
    @_silgen_name("LLVMFuzzerRunDriver")
    private func runLibFuzzer(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable's `main` to `<module>_main` (so tests can link the module); with
    /// libFuzzer that is where libFuzzer's driver starts.
    @_cdecl("FuzzCLI_main")
    public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var argc = argc
        var argv = argv
        return runLibFuzzer(&argc, &argv, fuzzTestOneInput)
    }

    /// libFuzzer's entry point: runs the selected fuzz target on one input. Public only because
    /// libFuzzer looks the C symbol up at link time.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        guard let selected else {
            FileHandle.standardError.write(
                Data("set FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: " "))\n".utf8))
            exit(2)
        }
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        _ = selected.run(bytes)
        return 0
    }

#else

    @main
    struct FuzzCommand {
        static let usage = """
            usage: fuzz --list
                   fuzz TARGET --corpus DIR [--inputs N] [--seconds S] [--seed N] [--max-len BYTES] [--last-input FILE]
                   fuzz --make-seeds wire-message DIR
            Runs the deterministic mutation fuzzer on one decoder (Scripts/fuzz runs libFuzzer instead when
            the toolchain has it). Exits 0 when no input crashed; a crash kills the process, and
            --last-input FILE then holds the input (8-byte length, then the bytes).
            """

        static func main() {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments == ["--list"] {
                for target in FuzzTarget.all { print(target.name) }
                return
            }
            if arguments.count == 3, arguments[0] == "--make-seeds", arguments[1] == "wire-message" {
                makeWireSeeds(directory: arguments[2])
                return
            }
            guard let name = arguments.first, let target = FuzzTarget.named(name) else {
                fail("unknown target\n\(usage)")
            }
            var options: [String: String] = [:]
            var rest = arguments.dropFirst()
            while let flag = rest.popFirst() {
                guard ["--corpus", "--inputs", "--seconds", "--seed", "--max-len", "--last-input"].contains(flag),
                    let value = rest.popFirst()
                else { fail("bad argument \(flag)\n\(usage)") }
                options[flag] = value
            }
            guard let corpus = options["--corpus"] else { fail("--corpus DIR is required\n\(usage)") }
            func number<T: LosslessStringConvertible>(_ flag: String, _: T.Type) -> T? {
                guard let text = options[flag] else { return nil }
                guard let value = T(text) else { fail("\(flag) \(text) is not a number") }
                return value
            }
            let inputs = number("--inputs", Int.self), seconds = number("--seconds", Double.self)
            guard inputs != nil || seconds != nil else { fail("give --inputs N or --seconds S") }
            let seeds = FuzzCorpus.load(directory: corpus)
            if seeds.isEmpty { print("fuzz: warning: no seeds in \(corpus); starting from the empty input") }
            let start = DispatchTime.now().uptimeNanoseconds
            let report = FuzzDriver.run(
                target, seeds: seeds, inputs: inputs, seconds: seconds, seed: number("--seed", UInt64.self) ?? 1,
                maxLength: number("--max-len", Int.self) ?? 1 << 16, lastInput: options["--last-input"])
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(
                "\(target.name): \(report.inputs) inputs in \(String(format: "%.1f", elapsed)) s "
                    + "(\(report.accepted) accepted, \(report.rejected) rejected; \(report.seedsAccepted) of \(seeds.count) seeds accepted), "
                    + "0 crashes, peak RSS \(report.peakRSSKiB / 1024) MiB")
        }

        static func makeWireSeeds(directory: String) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for (name, message) in FuzzTarget.wireSeedMessages() {
                    let bytes = FuzzFrames.join(message.frames().map(\.bytes))
                    try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name + ".frames"))
                }
            } catch {
                fail("cannot write seeds to \(directory): \(error)")
            }
        }

        static func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("fuzz: \(message)\n".utf8))
            exit(2)
        }
    }

#endif
