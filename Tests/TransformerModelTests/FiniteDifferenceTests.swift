import TensorCore
import TransformerModel
import XCTest

/// Whole-model gradient checks by central finite differences on a tiny config, with padding and
/// uneven lengths, for both norm placements and for untied/learned-position models.
final class FiniteDifferenceTests: XCTestCase {
    func check(_ config: ModelConfig, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = Transformer(config: config, seed: 3)
        // Make LayerNorm and bias parameters non-trivial so their gradients are exercised.
        var rng = RandomStream(seed: 5, stream: 1)
        for e in model.arena.layout.entries where e.shape.count == 1 {
            let p = model.arena.values.pointer + e.offset
            for j in 0..<e.count { p[j] += (rng.uniform() - 0.5) * 0.4 }
        }
        let b = TestBatch.uneven(vocab: config.vocabSize)
        let loss = ProjectionLoss(count: b.batch * b.targetLength * config.vocabSize, seed: 11)
        try loss.gradients(model, b)
        let analytic = model.arena.gradients.array
        var worst = 0.0
        for e in model.arena.layout.entries {
            // A few elements per tensor, spread over it.
            let picks = Swift.min(e.count, 6)
            for k in 0..<picks {
                let idx = e.offset + (k * 7919) % e.count
                let p = model.arena.values.pointer + idx
                let saved = p.pointee
                let h: Float = 1e-3
                p.pointee = saved + h
                let up = try loss.value(model, b)
                p.pointee = saved - h
                let down = try loss.value(model, b)
                p.pointee = saved
                let center = try loss.value(model, b)
                let a = Double(analytic[idx])
                func relative(_ n: Double) -> Double { abs(n - a) / max(1.0, abs(n), abs(a)) }
                let numeric = (up - down) / Double(2 * h)
                var err = relative(numeric)
                // At a ReLU kink the two one-sided slopes differ and backward picks one of them.
                let forward = (up - center) / Double(h), backward = (center - down) / Double(h)
                if err > 1e-2, abs(forward - backward) > 1e-2 { err = min(relative(forward), relative(backward)) }
                worst = max(worst, err)
                XCTAssertLessThan(
                    err, 1e-2, "\(e.name)[\(idx - e.offset)]: analytic \(a) numeric \(numeric)",
                    file: file, line: line)
            }
        }
        XCTAssertGreaterThan(analytic.reduce(0) { $0 + abs($1) }, 0, file: file, line: line)
        print(
            "finite differences \(config.norm) tied=\(config.tieEmbeddings) \(config.positional): worst relative error \(worst)"
        )
    }

    func tiny(_ norm: NormPlacement, tied: Bool = true, positional: PositionalKind = .sinusoidal) -> ModelConfig {
        ModelConfig(
            vocabSize: 11, dModel: 8, heads: 2, dFF: 12, encoderLayers: 2, decoderLayers: 2,
            dropout: 0, maxLen: 8, norm: norm, tieEmbeddings: tied, positional: positional)
    }

    func testPreNorm() throws { try check(tiny(.pre)) }
    func testPostNorm() throws { try check(tiny(.post)) }
    func testUntiedLearnedPositions() throws { try check(tiny(.pre, tied: false, positional: .learned)) }
}
