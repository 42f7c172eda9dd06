import TensorCore
import Training
import XCTest

final class ClippingTests: XCTestCase {
    func testNormOfPythagoreanTriples() {
        let a: [Float] = [3, 4]
        let b: [Float] = [1, -2, 2, 0]
        XCTAssertEqual(GradientClipping.globalNorm(a, count: 2), 5)
        XCTAssertEqual(GradientClipping.globalNorm(b, count: 4), 3)
        XCTAssertEqual(GradientClipping.globalNorm(b, count: 0), 0)
    }

    /// torch: coef = 1 / (5 + 1e-6) = 0.19999996, so [3, 4] becomes [0.59999988, 0.79999984].
    func testClipScalesByTorchCoefficient() {
        var g: [Float] = [3, 4]
        let result = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 1) }
        XCTAssertEqual(result.norm, 5)
        XCTAssertEqual(result.coefficient, Float(1 / (5 + 1e-6)))
        XCTAssertEqual(result.coefficient, 0.199_999_96, accuracy: 1e-8)
        XCTAssertEqual(g[0], 3 * Float(1 / (5 + 1e-6)))
        XCTAssertEqual(g[1], 4 * Float(1 / (5 + 1e-6)))
        XCTAssertEqual(GradientClipping.globalNorm(g, count: 2), 1, accuracy: 1e-6)
    }

    func testNoClippingBelowThresholdOrWhenDisabled() {
        var small: [Float] = [0.3, 0.4]
        let r1 = small.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 1) }
        XCTAssertEqual(r1.coefficient, 1)
        XCTAssertEqual(r1.norm, 0.5, accuracy: 1e-7)
        XCTAssertEqual(small, [0.3, 0.4])

        var large: [Float] = [30, 40]
        let r2 = large.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 0) }
        XCTAssertEqual(r2.norm, 50)
        XCTAssertEqual(r2.coefficient, 1)
        XCTAssertEqual(large, [30, 40])
    }

    func testNonFiniteNormLeavesGradientsAlone() {
        var g: [Float] = [3, .nan, 4]
        let r = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 3, maxNorm: 1) }
        XCTAssertTrue(r.norm.isNaN)
        XCTAssertEqual(r.coefficient, 1)
        XCTAssertEqual(g[0], 3)
        XCTAssertEqual(g[2], 4)
    }

    /// Many blocks: agrees with a plain Double sum and is the same bits for 1 and 2 threads.
    func testLargeBufferNormIsAccurateAndThreadIndependent() {
        var rng = RandomStream(seed: 5, stream: 0)
        let count = 300_007
        let g = (0..<count).map { _ in rng.normal() }
        let reference = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = GradientClipping.globalNorm(g, count: count)
        Parallel.threads = 2
        let two = GradientClipping.globalNorm(g, count: count)
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, reference, accuracy: reference * 1e-12)

        var clipped = g
        let r = clipped.withUnsafeMutableBufferPointer {
            GradientClipping.clip($0.baseAddress!, count: count, maxNorm: 2)
        }
        XCTAssertEqual(r.norm, two)
        XCTAssertEqual(GradientClipping.globalNorm(clipped, count: count), 2, accuracy: 1e-5)
        XCTAssertEqual(clipped[count - 1], g[count - 1] * r.coefficient)
    }
}
