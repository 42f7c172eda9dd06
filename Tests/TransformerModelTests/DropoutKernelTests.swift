import CKernels
import TensorCore
import TransformerModel
import XCTest

/// The C dropout kernel against a definition written from `Philox.block` (itself checked against
/// Random123's known answers): element i keeps its value (times 1/(1-rate)) when the i-th 16-bit
/// uniform of the counter (i/8, site, micro-batch, step) is at least the threshold.
final class DropoutKernelTests: XCTestCase {
    private func expected(_ src: [Float], range: Range<Int>, context: DropoutContext, site: UInt32) -> [Float] {
        let philox = Philox(seed: context.seed)
        var out = src
        for i in range {
            let w = philox.block(UInt32(i / 8), site, UInt32(context.microBatch), UInt32(context.step))
            let word = [w.0, w.1, w.2, w.3][(i % 8) / 2]
            let u = i % 2 == 0 ? word & 0xFFFF : word >> 16
            out[i] = u >= context.threshold ? src[i] * context.keepScale : 0
        }
        return out
    }

    private func values(_ n: Int) -> [Float] { (0..<n).map { Float($0 % 97) * 0.25 - 11 } }

    /// Ranges that start and end inside a 64-element chunk, on chunk edges, shorter than a block,
    /// and the whole buffer: both the AVX2 path and the scalar path equal the definition exactly.
    func testMatchesDefinitionOnEveryAlignment() {
        print(
            "DropoutKernelTests: AVX2 path \(ckernels_dropout_uses_avx2() == 1 ? "taken" : "not available, scalar path only")"
        )
        let src = values(1000)
        let context = DropoutContext(seed: 0x1234_5678_9ABC, step: 7, microBatch: 3, rate: 0.3)
        let ranges = [0..<1000, 0..<64, 64..<128, 5..<7, 3..<200, 61..<67, 63..<937, 999..<1000, 128..<128]
        for range in ranges {
            let want = expected(src, range: range, context: context, site: 42)
            var dispatched = src, scalar = src
            src.withUnsafeBufferPointer { s in
                dispatched.withUnsafeMutableBufferPointer { d in
                    Dropout.apply(s.baseAddress!, d.baseAddress!, range: range, context: context, site: 42)
                }
                scalar.withUnsafeMutableBufferPointer { d in
                    ckernels_dropout_scalar(
                        s.baseAddress!, d.baseAddress!, Int64(range.lowerBound), Int64(range.upperBound),
                        UInt32(truncatingIfNeeded: context.seed), UInt32(truncatingIfNeeded: context.seed >> 32),
                        42, 3, 7, context.threshold, context.keepScale)
                }
            }
            XCTAssertEqual(dispatched.map(\.bitPattern), want.map(\.bitPattern), "range \(range)")
            XCTAssertEqual(scalar.map(\.bitPattern), want.map(\.bitPattern), "scalar, range \(range)")
        }
    }

    /// In place (src == dst), in parallel over the whole buffer, and the kept fraction is the rate's.
    func testInPlaceParallelAndRate() {
        let threads = Parallel.threads
        Parallel.threads = 2
        defer { Parallel.threads = threads }
        let n = 1 << 18
        var x = [Float](repeating: 1, count: n)
        let context = DropoutContext(seed: 5, step: 1, microBatch: 0, rate: 0.1)
        x.withUnsafeMutableBufferPointer { p in
            Dropout.apply(p.baseAddress!, p.baseAddress!, count: n, context: context, site: 9)
        }
        let want = expected([Float](repeating: 1, count: n), range: 0..<n, context: context, site: 9)
        XCTAssertEqual(x.map(\.bitPattern), want.map(\.bitPattern))
        let kept = Double(x.filter { $0 != 0 }.count) / Double(n)
        XCTAssertEqual(kept, 0.9, accuracy: 0.005)
        XCTAssertEqual(x.first { $0 != 0 }, 1 / Float(0.9))
    }

    /// A rate whose threshold rounds to 65536 drops everything (no 16-bit uniform reaches it).
    func testThresholdAtTheTopDropsEverything() {
        let context = DropoutContext(seed: 1, step: 1, microBatch: 0, rate: 0.999995)
        XCTAssertEqual(context.threshold, 65536)
        var x = [Float](repeating: 3, count: 300)
        x.withUnsafeMutableBufferPointer { p in
            Dropout.apply(p.baseAddress!, p.baseAddress!, range: 1..<299, context: context, site: 2)
        }
        XCTAssertEqual(x[0], 3)
        XCTAssertEqual(x[299], 3)
        XCTAssertTrue(x[1..<299].allSatisfy { $0 == 0 })
    }

    func testReLUForwardAndBackward() {
        var x: [Float] = [-2, -0.0, 0, 0.5, 3, -.infinity, .infinity, .nan, -1e-30]
        x.withUnsafeMutableBufferPointer { VectorOps.relu($0.baseAddress!, count: $0.count) }
        XCTAssertEqual(Array(x[0..<7]).map(\.bitPattern), [Float(0), -0.0, 0, 0.5, 3, 0, .infinity].map(\.bitPattern))
        XCTAssertTrue(x[7].isNaN, "NaN must propagate, as torch.relu does")
        XCTAssertEqual(x[8], 0)
        // h after ReLU and dropout: only positive entries pass the gradient, scaled.
        let h: [Float] = [0, 2, 0, 0.1, 5]
        var dh: [Float] = [1, 2, 3, -4, 5]
        dh.withUnsafeMutableBufferPointer { d in
            h.withUnsafeBufferPointer {
                VectorOps.reluBackward(d.baseAddress!, output: $0.baseAddress!, count: 5, scale: 1.25)
            }
        }
        XCTAssertEqual(dh, [0, 2.5, 0, -5, 6.25])
        // An infinite gradient where the unit is off is blocked (0), as torch's threshold_backward.
        var big: [Float] = [.infinity, -.infinity, .infinity]
        let off: [Float] = [0, 0, 1]
        big.withUnsafeMutableBufferPointer { d in
            off.withUnsafeBufferPointer {
                VectorOps.reluBackward(d.baseAddress!, output: $0.baseAddress!, count: 3, scale: 1)
            }
        }
        XCTAssertEqual(big, [0, 0, .infinity])
    }
}
