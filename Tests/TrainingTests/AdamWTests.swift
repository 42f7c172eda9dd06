import TensorCore
import Training
import TransformerModel
import XCTest

final class AdamWTests: XCTestCase {
    /// vocab 3, D 2, no layers: embedding.weight [3,2] at 0 (decays), then four LayerNorm
    /// vectors of 2 at offsets 16, 32, 48, 64 (no decay); 80 elements with padding.
    private let layout = ParameterLayout(
        config: ModelConfig(
            vocabSize: 3, dModel: 2, heads: 1, dFF: 2,
            encoderLayers: 0, decoderLayers: 0))

    func testLayoutUsedByTheseTests() {
        XCTAssertEqual(layout.totalCount, 80)
        XCTAssertEqual(layout["embedding.weight"]?.decays, true)
        XCTAssertEqual(layout["encoder.norm.weight"]?.offset, 16)
        XCTAssertEqual(layout["encoder.norm.weight"]?.decays, false)
    }

    /// Two steps written out by hand with beta1 0.5, beta2 0.75, lr 0.25, wd 0.5, eps 1e-8,
    /// gradients 2 then 4, for a LayerNorm weight (p0 = 1, no decay) and a matrix entry (p0 = 2).
    ///
    /// Step 1: m = 0 + 0.5*(2-0) = 1, v = 0*0.75 + 0.25*2*2 = 1, bc1 = 0.5, bc2 = 0.25,
    ///   step size 0.25/0.5 = 0.5, denom = 1/0.5 + 1e-8, update 0.5*1/2 = 0.25.
    ///   LayerNorm: 1 - 0.25 = 0.75. Matrix: 2*(1 - 0.25*0.5) = 1.75, - 0.25 = 1.5.
    /// Step 2: m = 1 + 0.5*(4-1) = 2.5, v = 1*0.75 + 0.25*16 = 4.75, bc1 = 0.75, bc2 = 0.4375,
    ///   step size 1/3, denom = sqrt(4.75/0.4375) = 3.2950179, update 2.5/3/3.2950179 = 0.2529071.
    ///   LayerNorm: 0.75 - 0.2529071 = 0.4970929. Matrix: 1.5*0.875 = 1.3125, - 0.2529071 = 1.0595929.
    func testTwoHandComputedSteps() {
        let optimizer = AdamW(layout: layout, beta1: 0.5, beta2: 0.75, eps: 1e-8, weightDecay: 0.5)
        let parameters = FloatBuffer(count: layout.totalCount)
        let gradients = FloatBuffer(count: layout.totalCount)
        let matrix = 3, norm = 17
        parameters[matrix] = 2
        parameters[norm] = 1

        gradients[matrix] = 2
        gradients[norm] = 2
        optimizer.step(parameters: parameters.pointer, gradients: gradients.pointer, lr: 0.25)
        XCTAssertEqual(optimizer.step, 1)
        XCTAssertEqual(optimizer.m[norm], 1)
        XCTAssertEqual(optimizer.v[norm], 1)
        XCTAssertEqual(parameters[norm], 0.75)
        XCTAssertEqual(parameters[matrix], 1.5)

        gradients[matrix] = 4
        gradients[norm] = 4
        optimizer.step(parameters: parameters.pointer, gradients: gradients.pointer, lr: 0.25)
        XCTAssertEqual(optimizer.step, 2)
        XCTAssertEqual(optimizer.m[norm], 2.5)
        XCTAssertEqual(optimizer.v[norm], 4.75)
        XCTAssertEqual(optimizer.m[matrix], 2.5)
        XCTAssertEqual(optimizer.v[matrix], 4.75)
        XCTAssertEqual(parameters[norm], 0.497_092_93, accuracy: 1e-6)
        XCTAssertEqual(parameters[matrix], 1.059_592_93, accuracy: 1e-6)
        // Untouched entries with zero gradient stay at zero.
        XCTAssertEqual(parameters[0], 0)
        XCTAssertEqual(parameters[16], 0)
    }

    /// With zero gradients only decoupled decay acts: matrices shrink by (1 - lr*wd) per step,
    /// every bias and LayerNorm entry is left exactly as it was.
    func testDecayOnlyOnMatrices() {
        let optimizer = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let parameters = FloatBuffer(count: layout.totalCount)
        let gradients = FloatBuffer(count: layout.totalCount)
        for entry in layout.entries {
            for i in 0..<entry.count { parameters[entry.offset + i] = 1 }
        }
        optimizer.step(parameters: parameters.pointer, gradients: gradients.pointer, lr: 0.5)
        for entry in layout.entries {
            let expected: Float = entry.decays ? 1 - 0.5 * 0.01 : 1
            for i in 0..<entry.count {
                XCTAssertEqual(parameters[entry.offset + i], expected, "\(entry.name)[\(i)]")
            }
        }
    }

    /// Bias correction makes the first update lr * g / (|g| + eps), whatever the betas (PyTorch
    /// defaults here): m^ = g and sqrt(v^) = |g|, with eps added after the correction. With
    /// eps 1e-4 that is lr * sign(g) * |g| / (|g| + 1e-4), e.g. lr / 1.1 for |g| = 1e-3.
    func testFirstStepIsLearningRateTimesSignDampedByEps() {
        let optimizer = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-4, weightDecay: 0)
        let parameters = FloatBuffer(count: layout.totalCount)
        let gradients = FloatBuffer(count: layout.totalCount)
        let values: [Float] = [3, -0.001, 250, -7, 0.5, 1e-3]
        for (i, g) in values.enumerated() { gradients[i] = g }
        optimizer.step(parameters: parameters.pointer, gradients: gradients.pointer, lr: 1e-3)
        for (i, g) in values.enumerated() {
            let magnitude = Double(abs(g))
            let expected = -1e-3 * Double(g.sign == .minus ? -1 : 1) * magnitude / (magnitude + 1e-4)
            XCTAssertEqual(Double(parameters[i]), expected, accuracy: 3e-10, "entry \(i)")
        }
        XCTAssertEqual(parameters[5], Float(-1e-3 / 1.1), accuracy: 3e-10)
    }

    /// PyTorch forms `1 - beta1` from the Python float 0.9 and rounds it to Float once: after one
    /// step from m = 0 with g = 1, m is Float(0.1) = 0.1f and v is Float(1 - 0.98) = 0.02f. The Float
    /// convenience init widens Float(0.9) first, which gives 1 - 0.89999998 = 0.100000024.
    func testMomentConstantsRoundLikePyTorch() {
        let gradients = FloatBuffer(count: layout.totalCount)
        gradients[0] = 1
        let fromDouble = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let p1 = FloatBuffer(count: layout.totalCount)
        fromDouble.step(parameters: p1.pointer, gradients: gradients.pointer, lr: 1e-3)
        XCTAssertEqual(fromDouble.m[0], 0.1)
        XCTAssertEqual(fromDouble.v[0], 0.02)

        let beta1: Float = 0.9, beta2: Float = 0.98, eps: Float = 1e-9, decay: Float = 0.01
        let fromFloat = AdamW(layout: layout, beta1: beta1, beta2: beta2, eps: eps, weightDecay: decay)
        let p2 = FloatBuffer(count: layout.totalCount)
        fromFloat.step(parameters: p2.pointer, gradients: gradients.pointer, lr: Float(1e-3))
        XCTAssertEqual(fromFloat.m[0], 0.100_000_024)
        XCTAssertNotEqual(fromFloat.m[0], fromDouble.m[0])
    }

    /// Padding between tensors is never read or written, even if its gradient is garbage.
    func testPaddingIsNeverTouched() {
        let optimizer = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let parameters = FloatBuffer(count: layout.totalCount)
        let gradients = FloatBuffer(count: layout.totalCount)
        for i in 0..<layout.totalCount { gradients[i] = 5 }
        for _ in 0..<3 { optimizer.step(parameters: parameters.pointer, gradients: gradients.pointer, lr: 0.1) }
        for padding in [6, 15, 18, 31, 79] {
            XCTAssertEqual(parameters[padding], 0)
            XCTAssertEqual(optimizer.m[padding], 0)
            XCTAssertEqual(optimizer.v[padding], 0)
        }
        XCTAssertNotEqual(parameters[5], 0)
        XCTAssertNotEqual(parameters[65], 0)
    }

    /// Restoring m, v and step (as a checkpoint does) continues bit for bit like an uninterrupted run.
    func testResumeFromSavedStateIsBitwiseIdentical() {
        let count = layout.totalCount
        var rng = RandomStream(seed: 9, stream: 0)
        let gradientSteps = (0..<4).map { _ in (0..<count).map { _ in rng.normal() } }
        let start = (0..<count).map { _ in rng.normal() }

        let straight = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let p1 = FloatBuffer(start)
        for g in gradientSteps {
            g.withUnsafeBufferPointer { straight.step(parameters: p1.pointer, gradients: $0.baseAddress!, lr: 1e-3) }
        }

        let first = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let p2 = FloatBuffer(start)
        for g in gradientSteps[0..<2] {
            g.withUnsafeBufferPointer { first.step(parameters: p2.pointer, gradients: $0.baseAddress!, lr: 1e-3) }
        }
        let resumed = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        resumed.m.pointer.update(from: first.m.pointer, count: count)
        resumed.v.pointer.update(from: first.v.pointer, count: count)
        resumed.step = first.step
        for g in gradientSteps[2...] {
            g.withUnsafeBufferPointer { resumed.step(parameters: p2.pointer, gradients: $0.baseAddress!, lr: 1e-3) }
        }

        XCTAssertEqual(resumed.step, 4)
        XCTAssertEqual(p1.array, p2.array)
        XCTAssertEqual(straight.m.array, resumed.m.array)
        XCTAssertEqual(straight.v.array, resumed.v.array)
    }

    /// A large arena (many work chunks) gives the same bits with one thread and with two.
    func testThreadCountDoesNotChangeResult() {
        let config = ModelConfig(vocabSize: 1000, dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1)
        let big = ParameterLayout(config: config)
        var rng = RandomStream(seed: 3, stream: 1)
        let g = (0..<big.totalCount).map { _ in rng.normal() }
        let p = (0..<big.totalCount).map { _ in rng.normal() }
        var results: [[Float]] = []
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [1, 2] {
            Parallel.threads = threads
            let optimizer = AdamW(layout: big, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
            let parameters = FloatBuffer(p)
            g.withUnsafeBufferPointer {
                optimizer.step(parameters: parameters.pointer, gradients: $0.baseAddress!, lr: 1e-3)
            }
            results.append(parameters.array)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertNotEqual(results[0], p)
    }
}
