import Foundation
import Training
import TransformerModel
import XCTest

final class ConfigTests: XCTestCase {
    // MARK: Helpers

    /// A valid config (SPEC's example) as text, with some keys replaced (`"literal"`) or removed (`nil`).
    private func document(
        name: String = "\"test\"", model: [String: String?] = [:], training: [String: String?] = [:],
        data: [String: String?] = [:]
    ) -> String {
        let baseModel: [String: String] = [
            "vocab_size": "16", "d_model": "128", "heads": "4", "d_ff": "512", "encoder_layers": "2",
            "decoder_layers": "2", "dropout": "0.1", "max_len": "64", "norm": "\"pre\"", "tie_embeddings": "true",
            "positional": "\"sinusoidal\"",
        ]
        let baseTraining: [String: String] = [
            "batch_tokens": "4096", "accumulation_steps": "1", "max_steps": "1000", "schedule": "\"noam\"",
            "lr_factor": "1.0", "warmup_steps": "400", "betas": "[0.9, 0.98]", "eps": "1e-9", "weight_decay": "0.01",
            "clip_norm": "1.0", "label_smoothing": "0.1", "seed": "1", "validate_every": "100",
            "checkpoint_every": "200", "keep_checkpoints": "3", "activation_checkpointing": "false",
            "float16": "{\"parameters\": false, \"activations\": false, \"gradients\": false}",
        ]
        let baseData: [String: String] = ["task": "\"copy\"", "copy_max_len": "16"]
        func section(_ base: [String: String], _ overrides: [String: String?]) -> String {
            var fields = base
            for (key, value) in overrides { fields[key] = value }
            return "{" + fields.keys.sorted().map { "\"\($0)\": \(fields[$0] ?? "")" }.joined(separator: ", ") + "}"
        }
        return """
            {"name": \(name),
             "model": \(section(baseModel, model)),
             "training": \(section(baseTraining, training)),
             "data": \(section(baseData, data))}
            """
    }

    private func parse(_ text: String) throws -> RunConfig {
        try RunConfig.parse(data: Data(text.utf8), source: "test.json")
    }

    /// Asserts that parsing fails with exactly `expected` as the description.
    private func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try parse(text)
            XCTFail("expected error: \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(String(describing: error), expected, file: file, line: line)
        }
    }

    private var repositoryRoot: URL {
        // Tests/TrainingTests/ConfigTests.swift -> repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    // MARK: Shipped configs

    func testShippedConfigsLoad() throws {
        let directory = repositoryRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        XCTAssertTrue(
            Set(["copy.json", "reverse.json", "tiny.json", "small.json", "base.json"]).isSubset(of: Set(files)))
        var loaded: [String: RunConfig] = [:]
        for file in files {
            let config = try RunConfig.load(path: directory.appendingPathComponent(file).path)
            XCTAssertEqual(config.name + ".json", file, "the name of \(file) should match its file name")
            loaded[config.name] = config
        }
        XCTAssertEqual(loaded["copy"]?.data.task, .copy)
        XCTAssertEqual(loaded["reverse"]?.data.task, .reverse)
        // SPEC fixes the architectures of tiny, small and base.
        func shape(_ name: String) -> [Int] {
            guard let m = loaded[name]?.model else { return [] }
            return [m.dModel, m.heads, m.dFF, m.encoderLayers, m.decoderLayers]
        }
        XCTAssertEqual(shape("tiny"), [128, 4, 512, 2, 2])
        XCTAssertEqual(shape("small"), [256, 4, 1024, 3, 3])
        XCTAssertEqual(shape("base"), [512, 8, 2048, 6, 6])
        XCTAssertEqual(loaded["base"]?.model.tieEmbeddings, true)
    }

    func testSpecExampleParsesToExpectedValues() throws {
        let config = try parse(document())
        XCTAssertEqual(config.name, "test")
        XCTAssertEqual(
            config.model,
            ModelConfig(
                vocabSize: 16, dModel: 128, heads: 4, dFF: 512, encoderLayers: 2,
                decoderLayers: 2, dropout: 0.1, maxLen: 64, norm: .pre,
                tieEmbeddings: true, positional: .sinusoidal))
        XCTAssertEqual(
            config.training,
            TrainingConfig(
                batchTokens: 4096, maxSteps: 1000, warmupSteps: 400,
                checkpointEvery: 200))
        XCTAssertEqual(config.training.eps, 1e-9)
        XCTAssertEqual(config.training.betas.0, 0.9)
        XCTAssertEqual(config.training.betas.1, 0.98)
        XCTAssertEqual(config.data, DataConfig(task: .copy, copyMaxLen: 16))
    }

    func testAbsentOptionalKeysTakeDocumentedDefaults() throws {
        let config = try parse(
            """
            {"name": "t", "model": {"vocab_size": 10, "d_model": 8, "heads": 2, "d_ff": 16, "encoder_layers": 1,
             "decoder_layers": 1}, "training": {"batch_tokens": 64, "max_steps": 5},
             "data": {"task": "reverse", "copy_max_len": 4}}
            """)
        XCTAssertEqual(
            config.model,
            ModelConfig(
                vocabSize: 10, dModel: 8, heads: 2, dFF: 16, encoderLayers: 1,
                decoderLayers: 1, dropout: 0.1, maxLen: 64, norm: .pre,
                tieEmbeddings: true, positional: .sinusoidal))
        let t = config.training
        XCTAssertEqual(
            [
                t.accumulationSteps, t.warmupSteps, t.validateEvery, t.checkpointEvery, t.keepCheckpoints,
                t.logEvery, t.validSize,
            ], [1, 4000, 100, 1000, 3, 10, 500])
        XCTAssertEqual(
            [t.lrFactor, t.beta1, t.beta2, t.eps, t.weightDecay, t.clipNorm, t.labelSmoothing],
            [1.0, 0.9, 0.98, 1e-9, 0.01, 1.0, 0.1])
        XCTAssertEqual(t.schedule, .noam)
        XCTAssertEqual(t.seed, 1)
        XCTAssertFalse(t.activationCheckpointing)
        XCTAssertEqual(t.float16, .none)
        XCTAssertEqual(t, TrainingConfig(batchTokens: 64, maxSteps: 5))
    }

    // MARK: Errors by path

    func testUnknownKeyIsNamedWithSuggestion() {
        assertError(
            document(training: ["warmup_step": "400", "warmup_steps": nil]),
            "test.json: training.warmup_step: unknown key (did you mean warmup_steps?)")
        assertError(document(model: ["dModel": "128"]), "test.json: model.dModel: unknown key (did you mean d_model?)")
        assertError(
            document(model: ["colour": "1"]),
            "test.json: model.colour: unknown key (valid keys: d_ff, d_model, decoder_layers, dropout, "
                + "encoder_layers, heads, max_len, norm, positional, tie_embeddings, vocab_size)")
    }

    func testUnknownKeyInsideFloat16() {
        assertError(
            document(training: ["float16": "{\"parameters\": true, \"weights\": true}"]),
            "test.json: training.float16.weights: unknown key (valid keys: activations, gradients, parameters)")
    }

    func testUnknownTopLevelKey() {
        let text = document().replacingOccurrences(of: "{\"name\"", with: "{\"modle\": {}, \"name\"")
        assertError(text, "test.json: modle: unknown key (did you mean model?)")
    }

    func testHeadsMustDivideDModel() {
        assertError(document(model: ["heads": "5"]), "test.json: model.heads: 5 does not divide d_model 128")
    }

    func testWrongTypes() {
        assertError(
            document(model: ["heads": "\"4\""]), "test.json: model.heads: expected an integer, found the string \"4\"")
        assertError(
            document(model: ["tie_embeddings": "1"]), "test.json: model.tie_embeddings: expected true or false, found 1"
        )
        assertError(
            document(training: ["lr_factor": "true"]), "test.json: training.lr_factor: expected a number, found true")
        assertError(
            document(training: ["max_steps": "null"]), "test.json: training.max_steps: expected an integer, found null")
        assertError(
            document(model: ["vocab_size": "false"]), "test.json: model.vocab_size: expected an integer, found false")
        assertError(
            document(data: ["task": "[\"copy\"]"]),
            "test.json: data.task: expected one of \"copy\", \"reverse\", \"translation\", found an array")
        assertError("[1, 2]", "test.json: expected a JSON object at the top level, found an array")
        assertError(
            "{\"name\": \"t\", \"model\": 3, \"training\": {}, \"data\": {}}",
            "test.json: model: expected an object, found 3")
    }

    func testIntegersMustBeIntegers() throws {
        assertError(
            document(training: ["batch_tokens": "4096.5"]),
            "test.json: training.batch_tokens: expected an integer, found 4096.5")
        assertError(document(training: ["seed": "1.5"]), "test.json: training.seed: expected an integer, found 1.5")
        // An integral value written with a fraction or exponent is still that integer.
        XCTAssertEqual(try parse(document(training: ["batch_tokens": "4096.0"])).training.batchTokens, 4096)
        XCTAssertEqual(try parse(document(training: ["max_steps": "2e3"])).training.maxSteps, 2000)
    }

    func testMissingRequiredKeys() {
        assertError(document(model: ["d_model": nil]), "test.json: model.d_model: missing required key")
        assertError(document(training: ["max_steps": nil]), "test.json: training.max_steps: missing required key")
        assertError(
            document(data: ["copy_max_len": nil]),
            "test.json: data.copy_max_len: missing required key (task \"copy\" needs it)")
        assertError(
            document(data: ["copy_max_len": nil, "task": "\"translation\"", "train": "\"a.tsv\""]),
            "test.json: data.valid: missing required key (task \"translation\" needs it)")
        assertError(
            document(name: "\"x\"").replacingOccurrences(of: "\"name\": \"x\",", with: ""),
            "test.json: name: missing required key")
    }

    func testBadEnumValues() {
        assertError(
            document(training: ["schedule": "\"cosine\""]),
            "test.json: training.schedule: \"cosine\" is not one of \"noam\", \"warmup_cosine\"")
        assertError(
            document(training: ["schedule": "\"warmup-cosine\""]),
            "test.json: training.schedule: \"warmup-cosine\" is not one of \"noam\", \"warmup_cosine\" "
                + "(did you mean \"warmup_cosine\"?)")
        assertError(
            document(model: ["positional": "\"none\""]),
            "test.json: model.positional: \"none\" is not one of \"sinusoidal\", \"learned\"")
        assertError(
            document(data: ["task": "\"sort\""]),
            "test.json: data.task: \"sort\" is not one of \"copy\", \"reverse\", \"translation\"")
    }

    func testValueRanges() throws {
        assertError(document(model: ["dropout": "1.5"]), "test.json: model.dropout: 1.5 is outside [0, 1)")
        assertError(
            document(model: ["vocab_size": "4"]),
            "test.json: model.vocab_size: 4 must be greater than 4 "
                + "(ids 0-3 are the special tokens PAD, BOS, EOS, UNK)")
        assertError(document(model: ["encoder_layers": "0"]), "test.json: model.encoder_layers: 0 must be at least 1")
        assertError(
            document(model: ["d_model": "129", "heads": "3"]),
            "test.json: model.d_model: 129 must be even for sinusoidal positional encoding")
        XCTAssertEqual(
            try parse(document(model: ["d_model": "129", "heads": "3", "positional": "\"learned\""])).model.dModel, 129)
        assertError(
            document(training: ["betas": "[0.9]"]),
            "test.json: training.betas: expected an array of two numbers in [0, 1), found [0.9]")
        assertError(
            document(training: ["betas": "0.9"]),
            "test.json: training.betas: expected an array of two numbers in [0, 1), found 0.9")
        assertError(document(training: ["betas": "[0.9, 1]"]), "test.json: training.betas[1]: 1 is outside [0, 1)")
        assertError(
            document(training: ["label_smoothing": "1.0"]), "test.json: training.label_smoothing: 1.0 is outside [0, 1)"
        )
        assertError(
            document(training: ["keep_checkpoints": "0"]), "test.json: training.keep_checkpoints: 0 must be at least 1")
        assertError(document(training: ["lr_factor": "0"]), "test.json: training.lr_factor: 0 must be greater than 0")
        assertError(
            document(training: ["eps": "1e-50"]), "test.json: training.eps: 1e-50 is too small for a 32-bit float")
        assertError(
            document(training: ["weight_decay": "-0.1"]), "test.json: training.weight_decay: -0.1 must be at least 0")
        assertError(document(training: ["seed": "-1"]), "test.json: training.seed: -1 must be at least 0")
        assertError(document(training: ["warmup_steps": "0"]), "test.json: training.warmup_steps: 0 must be at least 1")
        XCTAssertEqual(
            try parse(document(training: ["warmup_steps": "0", "schedule": "\"warmup_cosine\""])).training.warmupSteps,
            0)
        XCTAssertEqual(try parse(document(training: ["seed": "18446744073709551615"])).training.seed, UInt64.max)
        XCTAssertEqual(try parse(document(training: ["clip_norm": "0"])).training.clipNorm, 0)
        assertError(
            document(training: ["batch_tokens": "63"]),
            "test.json: training.batch_tokens: 63 is smaller than "
                + "model.max_len 64 (a micro-batch must hold one full-length sequence)")
        assertError(
            document(data: ["copy_max_len": "63"]),
            "test.json: data.copy_max_len: 63 + 2 exceeds model.max_len 64 (the target gets BOS and EOS)")
        XCTAssertEqual(try parse(document(data: ["copy_max_len": "62"])).data.copyMaxLen, 62)
        assertError(
            document(name: "\"../x\""),
            "test.json: name: \"../x\" must contain only letters, digits, "
                + "'.', '_' and '-', and not start with '.' (it names the run directory)")
    }

    func testFloat16Forms() throws {
        XCTAssertEqual(try parse(document(training: ["float16": "true"])).training.float16, .all)
        XCTAssertEqual(
            try parse(document(training: ["float16": "{\"gradients\": true}"])).training.float16,
            Float16Options(parameters: false, activations: false, gradients: true))
        assertError(
            document(training: ["float16": "{\"gradients\": 1}"]),
            "test.json: training.float16.gradients: expected true or false, found 1")
        XCTAssertEqual(
            try Float16Options.parse("parameters,gradients"), Float16Options(parameters: true, gradients: true))
        XCTAssertEqual(try Float16Options.parse("all"), .all)
        XCTAssertThrowsError(try Float16Options.parse("weights"))
    }

    func testTranslationTask() throws {
        let config = try parse(
            document(data: [
                "task": "\"translation\"", "copy_max_len": nil, "train": "\"d/train.tsv\"",
                "valid": "\"d/valid.tsv\"", "tokenizer": "\"d/tok.json\"",
            ]))
        XCTAssertEqual(config.data, .translation(train: "d/train.tsv", valid: "d/valid.tsv", tokenizer: "d/tok.json"))
        assertError(
            document(data: ["task": "\"translation\"", "train": "\"a\"", "valid": "\"b\"", "tokenizer": "\"c\""]),
            "test.json: data.copy_max_len: only used by tasks \"copy\" and \"reverse\", not \"translation\"")
        assertError(
            document(data: ["train": "\"a\""]), "test.json: data.train: only used by task \"translation\", not \"copy\""
        )
    }

    func testBestMetricAndPatience() throws {
        let toy = try parse(document())
        XCTAssertNil(toy.training.bestMetric)
        XCTAssertEqual(toy.bestMetric, .loss)
        XCTAssertEqual(toy.training.patience, 0)
        let translation: [String: String?] = [
            "task": "\"translation\"", "copy_max_len": nil, "train": "\"a\"",
            "valid": "\"b\"", "tokenizer": "\"c\"",
        ]
        XCTAssertEqual(try parse(document(data: translation)).bestMetric, .bleu, "BLEU by default for translation")
        var withoutBLEU = translation
        withoutBLEU["bleu_every"] = "0"
        XCTAssertEqual(try parse(document(data: withoutBLEU)).bestMetric, .loss, "no BLEU computed: the loss")
        let chrf = try parse(document(training: ["best_metric": "\"chrf\"", "patience": "4"], data: translation))
        XCTAssertEqual(chrf.bestMetric, .chrf)
        XCTAssertEqual(chrf.training.bestMetric, .chrf)
        XCTAssertEqual(chrf.training.patience, 4)
        XCTAssertEqual(try parse(document(training: ["best_metric": "\"loss\""], data: translation)).bestMetric, .loss)
        assertError(
            document(training: ["best_metric": "\"bleu\""]),
            "test.json: training.best_metric: \"bleu\" needs task \"translation\": the toy task \"copy\" computes "
                + "no BLEU or chrF (use \"loss\")")
        assertError(
            document(training: ["best_metric": "\"chrf\""], data: withoutBLEU),
            "test.json: training.best_metric: \"chrf\" needs data.bleu_every >= 1: with 0 no validation computes "
                + "BLEU or chrF (use \"loss\", or set bleu_every)")
        assertError(
            document(training: ["best_metric": "\"accuracy\""]),
            "test.json: training.best_metric: \"accuracy\" is not one of \"loss\", \"bleu\", \"chrf\"")
        assertError(
            document(training: ["best_metric": "1"]),
            "test.json: training.best_metric: expected one of \"loss\", \"bleu\", \"chrf\", found 1")
        assertError(document(training: ["patience": "-1"]), "test.json: training.patience: -1 must be at least 0")
        assertError(
            document(training: ["patience": "2.5"]), "test.json: training.patience: expected an integer, found 2.5")
        assertError(
            document(training: ["patiense": "2"]), "test.json: training.patiense: unknown key (did you mean patience?)")
    }

    /// Configs that do not set the new keys keep their rawJSON, hence their hash: a file's text is
    /// hashed as written (pinned in testRawJSONIsCanonicalAndHashIsFNV1a), and an in-memory config
    /// spells the keys out only when set. Setting one changes the hash.
    func testBestMetricAndPatienceLeaveOldHashesUnchanged() throws {
        let model = ModelConfig(
            vocabSize: 16, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, maxLen: 20)
        let plain = try RunConfig(
            name: "mem", model: model, training: TrainingConfig(batchTokens: 256, maxSteps: 3),
            data: .toy(.copy, copyMaxLen: 8))
        let raw = String(decoding: plain.rawJSON, as: UTF8.self)
        XCTAssertFalse(raw.contains("best_metric") || raw.contains("patience"), raw)
        // FNV-1a 64 of that text, computed independently (Python); the encoding before these keys
        // wrote the same text (it adds them only when set), so this is the hash such configs had.
        XCTAssertEqual(plain.configHash, "f833a1a6874ed2bb")
        var training = TrainingConfig(batchTokens: 256, maxSteps: 3)
        training.bestMetric = .loss
        training.patience = 2
        let set = try RunConfig(name: "mem", model: model, training: training, data: .toy(.copy, copyMaxLen: 8))
        XCTAssertTrue(String(decoding: set.rawJSON, as: UTF8.self).contains("\"best_metric\":\"loss\""))
        XCTAssertTrue(String(decoding: set.rawJSON, as: UTF8.self).contains("\"patience\":2"))
        XCTAssertNotEqual(set.configHash, plain.configHash)
        XCTAssertEqual(try RunConfig.parse(data: set.rawJSON, source: "raw"), set)
        XCTAssertEqual(set.training.patience, 2)
    }

    // MARK: Files and JSON syntax

    func testFileErrors() throws {
        let missing = NSTemporaryDirectory() + "no-such-config-\(UUID().uuidString).json"
        XCTAssertThrowsError(try RunConfig.load(path: missing)) { error in
            XCTAssertEqual(error as? ConfigError, .fileNotFound(path: missing))
            XCTAssertEqual(String(describing: error), "\(missing): config file not found")
        }
        let file = NSTemporaryDirectory() + "config-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data("{\n  \"name\": \"x\",\n  \"model\": {,}\n}".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try RunConfig.load(path: file)) { error in
            guard case .invalidJSON(let path, let reason)? = error as? ConfigError else {
                return XCTFail("expected invalidJSON, got \(error)")
            }
            XCTAssertEqual(path, file)
            XCTAssertTrue(reason.contains("line 3"), reason)
        }
        try Data(document(model: ["heads": "5"]).utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try RunConfig.load(path: file)) { error in
            XCTAssertEqual(String(describing: error), "\(file): model.heads: 5 does not divide d_model 128")
        }
    }

    // MARK: Canonical JSON and hash

    func testRawJSONIsCanonicalAndHashIsFNV1a() throws {
        let text = """
            { "training": {"max_steps": 5, "batch_tokens": 64}, "name": "t",
              "data": {"task": "reverse", "copy_max_len": 4},
              "model": {"vocab_size": 10, "heads": 2, "d_model": 8, "d_ff": 16, "encoder_layers": 1, "decoder_layers": 1} }
            """
        let config = try parse(text)
        let canonical =
            "{\"data\":{\"copy_max_len\":4,\"task\":\"reverse\"},\"model\":{\"d_ff\":16,\"d_model\":8,"
            + "\"decoder_layers\":1,\"encoder_layers\":1,\"heads\":2,\"vocab_size\":10},\"name\":\"t\","
            + "\"training\":{\"batch_tokens\":64,\"max_steps\":5}}"
        XCTAssertEqual(String(decoding: config.rawJSON, as: UTF8.self), canonical)
        // FNV-1a 64 of the canonical bytes, computed independently (Python).
        XCTAssertEqual(config.configHash, "a4f3480e5cef4ccb")
        // Reparsing the canonical form is a fixed point.
        XCTAssertEqual(try RunConfig.parse(data: config.rawJSON, source: "raw"), config)
    }

    func testHashIgnoresLayoutButNotValues() throws {
        let a = try parse(document())
        let compact = document().replacingOccurrences(of: "\n", with: "").replacingOccurrences(of: ", ", with: ",")
        XCTAssertEqual(try parse(compact).configHash, a.configHash)
        XCTAssertEqual(try parse(document()).configHash, a.configHash)
        XCTAssertNotEqual(try parse(document(model: ["dropout": "0.2"])).configHash, a.configHash)
        XCTAssertNotEqual(try parse(document(training: ["seed": "2"])).configHash, a.configHash)
        XCTAssertEqual(a.configHash.count, 16)
    }

    func testOverridesRewriteRawJSON() throws {
        let original = try parse(document())
        let overridden = try original.with(seed: 7, maxSteps: 20, float16: .all)
        XCTAssertEqual(overridden.training.seed, 7)
        XCTAssertEqual(overridden.training.maxSteps, 20)
        XCTAssertEqual(overridden.training.float16, .all)
        XCTAssertEqual(overridden.model, original.model)
        XCTAssertNotEqual(overridden.configHash, original.configHash)
        // The override is in rawJSON, so a checkpoint of this run reloads with it.
        XCTAssertEqual(try RunConfig.parse(data: overridden.rawJSON, source: "state.json"), overridden)
        XCTAssertEqual(try original.with().rawJSON, original.rawJSON)
        XCTAssertThrowsError(try original.with(maxSteps: 0)) { error in
            XCTAssertEqual(String(describing: error), "overrides of test: training.max_steps: 0 must be at least 1")
        }
    }

    func testInMemoryConfigIsValidatedAndSerialised() throws {
        let model = ModelConfig(
            vocabSize: 16, dModel: 32, heads: 4, dFF: 64, encoderLayers: 1, decoderLayers: 1, maxLen: 20)
        let config = try RunConfig(
            name: "mem", model: model, training: TrainingConfig(batchTokens: 256, maxSteps: 3),
            data: .toy(.copy, copyMaxLen: 8))
        XCTAssertEqual(try RunConfig.parse(data: config.rawJSON, source: "raw"), config)
        let raw = String(decoding: config.rawJSON, as: UTF8.self)
        XCTAssertTrue(raw.contains("\"dropout\":0.1,"), raw)
        XCTAssertTrue(raw.contains("\"eps\":1e-09,"), raw)
        var bad = model
        bad.heads = 3
        XCTAssertThrowsError(
            try RunConfig(
                name: "mem", model: bad, training: TrainingConfig(batchTokens: 256, maxSteps: 3),
                data: .toy(.copy, copyMaxLen: 8))
        ) { error in
            XCTAssertEqual(
                String(describing: error), "RunConfig(name: \"mem\"): model.heads: 3 does not divide d_model 32")
        }
    }
}
