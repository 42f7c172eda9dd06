import TensorCore
import XCTest

final class PhiloxTests: XCTestCase {
    /// Known-answer tests from the Random123 distribution (kat_vectors, philox4x32_10).
    func testKnownAnswers() {
        var p = Philox(seed: 0)
        var r = p.block(0, 0, 0, 0)
        XCTAssertEqual([r.0, r.1, r.2, r.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        p.key = (0xa409_3822, 0x299f_31d0)
        r = p.block(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344)
        XCTAssertEqual([r.0, r.1, r.2, r.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testStreamIsReproducibleAndResumable() {
        var a = RandomStream(seed: 7, stream: 3)
        let first = (0..<10).map { _ in a.nextUInt32() }
        var b = RandomStream(seed: 7, stream: 3)
        XCTAssertEqual(first, (0..<10).map { _ in b.nextUInt32() })
        // Resuming from a block position reproduces the continuation.
        var c = RandomStream(seed: 7, stream: 3, position: 1)
        XCTAssertEqual(Array(first[4..<8]), (0..<4).map { _ in c.nextUInt32() })
        var d = RandomStream(seed: 8, stream: 3)
        XCTAssertNotEqual(first, (0..<10).map { _ in d.nextUInt32() })
    }
}
