/// What a decoder did with one fuzz input.
package enum FuzzOutcome: Sendable, Equatable {
    /// Decoded (and the target's consistency checks on the result held).
    case accepted
    /// Refused with a typed error, as it must be for a malformed input.
    case rejected
}

/// One decoder of bytes from outside (network frames or files), wrapped for fuzzing.
///
/// `run` must return for every input: a malformed one is `.rejected` through the decoder's own
/// typed error. A crash, a hang or an unbounded allocation is a bug in the decoder. A consistency
/// check that fails on a decoded value (e.g. re-encoding does not decode to the same bytes) stops
/// the process with `fatalError`, so every engine (libFuzzer, the mutation driver, XCTest) records
/// it as a crash.
package struct FuzzTarget: Sendable {
    /// The name `Scripts/fuzz` and the corpus directory use, e.g. "wire-message".
    package let name: String
    /// What is decoded, for `--list -v` and the README.
    package let summary: String
    /// Mutations that understand the input's syntax (JSON text) are added to the byte-level ones.
    package let isJSON: Bool
    package let run: @Sendable ([UInt8]) -> FuzzOutcome

    package init(name: String, summary: String, isJSON: Bool, run: @escaping @Sendable ([UInt8]) -> FuzzOutcome) {
        self.name = name
        self.summary = summary
        self.isJSON = isJSON
        self.run = run
    }

    /// Every target, one per decoder.
    package static let all: [FuzzTarget] = [
        wireMessage, handshakeJSON, safetensors, stateJSON, tokenizerJSON, configJSON, tsvCorpus,
    ]

    package static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// A broken invariant on a value the decoder accepted: a bug to fix, reported like a crash.
func fuzzInvariant(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant failed: \(message())") }
}
