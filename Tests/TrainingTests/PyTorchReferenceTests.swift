import Foundation
import TensorCore
import Training
import TransformerModel
import XCTest

/// Compares the model, loss, gradients and 10 AdamW steps against fixtures written by
/// `Scripts/reference/make_fixtures.py` from `torch.nn.Transformer(batch_first=True)` in float64.
final class PyTorchReferenceTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    struct Reference {
        let file: SafetensorsFile
        let json: [String: Any]
        let config: ModelConfig
        let batch: Batch
        let smoothing: Float
    }

    func load(_ variant: String) throws -> Reference {
        let base = PyTorchReferenceTests.fixtures.appendingPathComponent("reference_\(variant)")
        let file = try SafetensorsFile(path: base.path + ".safetensors")
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: base.appendingPathExtension("json"))) as? [String: Any])
        let c = try XCTUnwrap(json["config"] as? [String: Any])
        func int(_ k: String) throws -> Int { try XCTUnwrap(c[k] as? Int, k) }
        let config = ModelConfig(
            vocabSize: try int("vocab_size"), dModel: try int("d_model"), heads: try int("heads"),
            dFF: try int("d_ff"), encoderLayers: try int("encoder_layers"),
            decoderLayers: try int("decoder_layers"), dropout: 0, maxLen: try int("max_len"),
            norm: try XCTUnwrap(NormPlacement(rawValue: try XCTUnwrap(c["norm"] as? String))),
            tieEmbeddings: try XCTUnwrap(c["tie_embeddings"] as? Bool),
            positional: try XCTUnwrap(PositionalKind(rawValue: try XCTUnwrap(c["positional"] as? String))))
        func ints(_ name: String) throws -> (values: [Int32], shape: [Int]) {
            let info = try XCTUnwrap(file[name])
            let bytes = try file.bytes(of: name)
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            return (values, info.shape)
        }
        let src = try ints("input.src"), tgt = try ints("input.tgt_in"), labels = try ints("input.labels")
        let batch = Batch(
            batchSize: src.shape[0], sourceLength: src.shape[1], targetLength: tgt.shape[1],
            source: src.values, targetInput: tgt.values, targetOutput: labels.values)
        return Reference(
            file: file, json: json, config: config, batch: batch,
            smoothing: Float(try XCTUnwrap(c["label_smoothing"] as? Double)))
    }

    func makeModel(_ r: Reference) throws -> Transformer {
        let model = Transformer(config: r.config, seed: 0)
        let order = try XCTUnwrap(r.json["parameter_order"] as? [Any]).map { "\($0)" }
        XCTAssertEqual(order.count, model.arena.layout.entries.count)
        try r.file.read(layout: model.arena.layout, into: model.arena.values.pointer, prefix: "param.")
        return model
    }

    /// Forward + loss (+ backward of the mean loss when `backward`).
    func lossAndGradients(_ model: Transformer, _ r: Reference, backward: Bool) throws -> LossStatistics {
        model.arena.zeroGradients()
        let b = r.batch
        let logits = try model.forward(
            source: b.source, targetInput: b.targetInput, batchSize: b.batchSize,
            sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: .disabled)
        let stats = b.targetOutput.withUnsafeBufferPointer { t in
            LabelSmoothedCrossEntropy.evaluate(
                logits: logits, targets: t.baseAddress!, rows: b.batchSize * b.targetLength,
                vocab: r.config.vocabSize, smoothing: r.smoothing,
                gradientScale: backward ? 1 / Float(b.targetTokens) : nil)
        }
        if backward { model.backward() }
        return stats
    }

    func checkForwardAndGradients(_ variant: String) throws {
        let r = try load(variant)
        let model = try makeModel(r)
        let b = r.batch
        let logits = try model.forward(
            source: b.source, targetInput: b.targetInput, batchSize: b.batchSize,
            sourceLength: b.sourceLength, targetLength: b.targetLength, dropout: .disabled)
        let expected = try r.file.floats(named: "logits")
        XCTAssertEqual(expected.count, b.batchSize * b.targetLength * r.config.vocabSize)
        var worstLogit: Float = 0
        for i in 0..<expected.count {
            let err = abs(logits[i] - expected[i]) / max(1, abs(expected[i]))
            worstLogit = max(worstLogit, err)
        }
        XCTAssertLessThan(worstLogit, 1e-4, "\(variant): logits")
        let stats = try lossAndGradients(model, r, backward: true)
        let refLoss = try XCTUnwrap(r.json["loss"] as? Double)
        XCTAssertEqual(stats.tokens, try XCTUnwrap(r.json["nonpad_tokens"] as? Int))
        XCTAssertLessThan(
            abs(stats.meanLoss - refLoss) / refLoss, 1e-4, "\(variant): loss \(stats.meanLoss) vs \(refLoss)")
        var worstGrad = 0.0
        for e in model.arena.layout.entries {
            let ref = try r.file.floats(named: "grad." + e.name)
            let got = model.arena.gradient(e.name)
            let scale = Double(ref.map { abs($0) }.max() ?? 0)
            let maxErr = Double(zip(got, ref).map { abs($0 - $1) }.max() ?? 0)
            let rel = scale > 1e-6 ? maxErr / scale : maxErr
            worstGrad = max(worstGrad, rel)
            XCTAssertLessThan(rel, 1e-3, "\(variant): gradient of \(e.name) (max |ref| \(scale), max error \(maxErr))")
        }
        print(
            "\(variant): logits rel err \(worstLogit), loss \(stats.meanLoss) vs \(refLoss), worst gradient rel err \(worstGrad)"
        )
    }

    func checkTenSteps(_ variant: String) throws {
        let r = try load(variant)
        let model = try makeModel(r)
        let layout = model.arena.layout
        let adam = AdamW(layout: layout, beta1: 0.9, beta2: 0.98, eps: 1e-9, weightDecay: 0.01)
        let schedule = LearningRateSchedule.noam(dModel: r.config.dModel, warmup: 4, factor: 1)
        let refLosses = try XCTUnwrap(r.json["losses"] as? [Double])
        let refNorms = try XCTUnwrap(r.json["grad_norms"] as? [Double])
        let refRates = try XCTUnwrap(r.json["lrs"] as? [Double])
        var worst = 0.0
        for step in 1...10 {
            let stats = try lossAndGradients(model, r, backward: true)
            let (norm, _) = GradientClipping.clip(model.arena.gradients.pointer, count: layout.totalCount, maxNorm: 1)
            let lr = schedule.exactRate(step: step)
            XCTAssertEqual(lr, refRates[step - 1], accuracy: 1e-12)
            // Steps 1-6 hold to ~1e-5 (grad norm) and ~1e-6 (loss). In the "pre" fixture, step 7 then jumps:
            // the grad norm's error goes from ~1e-5 to ~1e-3 in one step, with OpenBLAS's products
            // (1.3e-3, peak 3.5e-3 at step 9, loss 1.4e-4) as with `BLAS.gemmFewRows` (2.4e-3, 7.1e-3,
            // 2.6e-4), measured on AMD EPYC (Zen 4) 2026-12-02. That is a rounding-sensitive point of the
            // trajectory after the lr peak (Float32 PyTorch itself drifts 1.65e-4 in loss from the float64
            // oracle on Intel family 6 model 207), not a model difference: forward and gradients match to
            // ~1e-6 above. So the early steps carry the tight bars and the later ones a loose band.
            let chaotic = step >= 7
            let normError = abs(norm - refNorms[step - 1]) / refNorms[step - 1]
            XCTAssertLessThan(normError, chaotic ? 2e-2 : 2e-4, "\(variant) step \(step) grad norm")
            let rel = abs(stats.meanLoss - refLosses[step - 1]) / refLosses[step - 1]
            worst = max(worst, rel)
            XCTAssertLessThan(
                rel, chaotic ? 1e-3 : 2e-5, "\(variant) step \(step): loss \(stats.meanLoss) vs \(refLosses[step - 1])")
            adam.step(parameters: model.arena.values.pointer, gradients: model.arena.gradients.pointer, lr: lr)
        }
        let unreliable = try XCTUnwrap((r.json["step10_unreliable"] as? [String: Any])?["tensors"] as? [String])
        for e in layout.entries {
            var ref = try r.file.floats(named: "step10.param." + e.name)
            var got = model.arena.value(e.name)
            if unreliable.contains(e.name) {  // key-bias rows: exact gradient 0, see the fixture's JSON
                let d = r.config.dModel
                ref.removeSubrange(d..<(2 * d))
                got.removeSubrange(d..<(2 * d))
            }
            let maxErr = zip(got, ref).map { abs($0 - $1) }.max() ?? 0
            // PyTorch float32 itself is 7.8e-4 off on the worst tensors here (1.0e-3 for us); see above.
            XCTAssertLessThan(maxErr, 2e-3, "\(variant): \(e.name) after 10 steps")
        }
        print("\(variant): 10-step loss curve worst relative error \(worst)")
    }

    func testPreNormForwardAndGradients() throws { try checkForwardAndGradients("pre") }
    func testPostNormForwardAndGradients() throws { try checkForwardAndGradients("post") }
    func testUntiedLearnedForwardAndGradients() throws { try checkForwardAndGradients("pre_untied_learned") }
    func testPreNormTenAdamWSteps() throws { try checkTenSteps("pre") }
    func testPostNormTenAdamWSteps() throws { try checkTenSteps("post") }
    func testUntiedLearnedTenAdamWSteps() throws { try checkTenSteps("pre_untied_learned") }
}
