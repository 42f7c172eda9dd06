import Distributed
import FuzzTargets
import XCTest

/// A short deterministic run of every fuzz target over the committed seed corpus
/// (Tests/FuzzTargetsTests/FuzzTargetsTests/FuzzCorpus/<target>/). The long runs are `Scripts/fuzz TARGET SECONDS` (README "Fuzzing").
final class FuzzSmokeTests: XCTestCase {
    static let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus").path
    /// Mutants per target: about 0.1-1 s each here, enough to reach every error path of the seeds.
    static let inputsPerTarget = 5000

    func smoke(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let target = try XCTUnwrap(FuzzTarget.named(name), file: file, line: line)
        let seeds = FuzzCorpus.load(directory: Self.corpusRoot + "/" + name)
        XCTAssertGreaterThanOrEqual(seeds.count, 3, "seed corpus of \(name)", file: file, line: line)
        let report = FuzzDriver.run(target, seeds: seeds, inputs: Self.inputsPerTarget, seconds: nil, seed: 1)
        XCTAssertEqual(report.inputs, Self.inputsPerTarget, file: file, line: line)
        // Every committed seed is a valid input (else the corpus would not reach past the first check).
        XCTAssertEqual(report.seedsAccepted, seeds.count, "\(name) refuses a seed", file: file, line: line)
        // The mutants reach the decoder's error paths and also pass it.
        XCTAssertGreaterThan(report.rejected, 0, file: file, line: line)
        XCTAssertGreaterThan(report.accepted, seeds.count, file: file, line: line)
        // Nothing allocates what a length field claims: the whole test process stays small.
        XCTAssertLessThan(report.peakRSSKiB, 1 << 20, "peak RSS \(report.peakRSSKiB) KiB", file: file, line: line)
    }

    func testWireMessage() throws { try smoke("wire-message") }
    func testHandshakeJSON() throws { try smoke("handshake-json") }
    func testSafetensors() throws { try smoke("safetensors") }
    func testStateJSON() throws { try smoke("state-json") }
    func testTokenizerJSON() throws { try smoke("tokenizer-json") }
    func testConfigJSON() throws { try smoke("config-json") }
    func testTSVCorpus() throws { try smoke("tsv-corpus") }

    func testEveryTargetHasASmokeTestAndACorpus() {
        XCTAssertEqual(
            FuzzTarget.all.map(\.name),
            [
                "wire-message", "handshake-json", "safetensors", "state-json",
                "tokenizer-json", "config-json", "tsv-corpus",
            ])
        for target in FuzzTarget.all {
            XCTAssertFalse(FuzzCorpus.load(directory: Self.corpusRoot + "/" + target.name).isEmpty, target.name)
        }
    }

    /// The wire seeds are what `fuzz --make-seeds wire-message` writes today (regenerate the corpus
    /// when the protocol changes).
    func testWireSeedsAreCurrentEncodings() throws {
        for (name, message) in FuzzTarget.wireSeedMessages() {
            let path = Self.corpusRoot + "/wire-message/" + name + ".frames"
            let committed = try XCTUnwrap(FileManager.default.contents(atPath: path), path)
            XCTAssertEqual(Array(committed), FuzzFrames.join(message.frames().map(\.bytes)), name)
        }
    }

    func testFramesSplitAndJoin() {
        let frames: [[UInt8]] = [[1, 2, 3], [], Array("x|FRAME".utf8)]
        XCTAssertEqual(FuzzFrames.split(FuzzFrames.join(frames)), frames)
        XCTAssertEqual(FuzzFrames.split([]), [])
        XCTAssertEqual(FuzzFrames.split(Array("|FRAME|".utf8)), [[], []])
    }

    func testMutationsAreDeterministic() {
        func mutants(seed: UInt64) -> [[UInt8]] {
            var mutator = Mutator(seed: seed, isJSON: true)
            return (0..<50).map { _ in
                mutator.mutate(Array("{\"a\": [1, 2.5, \"x\"]}".utf8), other: Array("[true]".utf8))
            }
        }
        XCTAssertEqual(mutants(seed: 9), mutants(seed: 9))
        XCTAssertNotEqual(mutants(seed: 9), mutants(seed: 10))
    }
}
