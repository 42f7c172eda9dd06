import TensorCore
import TransformerModel
import XCTest

/// `runsToMaxLength` (benchmarks) keeps decoding to the length limit; real use is unchanged.
final class FixedLengthDecodingTests: XCTestCase {
    private let sources: [[Int32]] = [[4, 5, 6], [7], [5, 5, 4, 7, 6]]

    func testGreedyRunsEveryStepWithTheSameOutputs() throws {
        let m = decodingTestModel(vocab: 8, seed: 9, eosScale: 4)
        let normal = GreedyDecoder(model: m)
        let outputs = try normal.decode(sources, maxLength: 10)
        // The precondition of the test: without the option every row ends early.
        XCTAssertLessThan(normal.decoder.position, 10)
        var forced = GreedyDecoder(model: m)
        forced.runsToMaxLength = true
        XCTAssertEqual(try forced.decode(sources, maxLength: 10), outputs)
        XCTAssertEqual(forced.decoder.position, 10)
    }

    func testBeamRunsEveryStep() throws {
        let m = decodingTestModel(vocab: 8, seed: 9, eosScale: 4)
        let normal = try BeamSearchDecoder(model: m, beamWidth: 4)
        let found = try normal.search(sources, maxLength: 10)
        XCTAssertLessThan(normal.decoder.position, 10)
        XCTAssertTrue(found.contains { $0.endsWithEOS })
        var forced = try BeamSearchDecoder(model: m, beamWidth: 4)
        forced.runsToMaxLength = true
        let long = try forced.search(sources, maxLength: 10)
        XCTAssertEqual(forced.decoder.position, 10)
        // Only the last step may end a hypothesis, so each has 10 predictions.
        XCTAssertEqual(long.map(\.predictions), [10, 10, 10])
    }
}
