import TransformerModel

/// Turns a config document into validated values. Checks run in document order (name, model,
/// training, data), and within an object unknown keys come first, so one document always reports
/// the same first error.
enum RunConfigParser {
    static let rootKeys = ["name", "model", "training", "data"]
    static let modelKeys = [
        "vocab_size", "d_model", "heads", "d_ff", "encoder_layers", "decoder_layers",
        "dropout", "max_len", "norm", "tie_embeddings", "positional",
    ]
    static let trainingKeys = [
        "batch_tokens", "accumulation_steps", "max_steps", "schedule", "lr_factor",
        "warmup_steps", "betas", "eps", "weight_decay", "clip_norm", "label_smoothing",
        "seed", "validate_every", "checkpoint_every", "keep_checkpoints",
        "activation_checkpointing", "float16", "log_every", "valid_size", "best_metric", "patience",
    ]
    static let float16Keys = ["parameters", "activations", "gradients"]
    static let dataKeys = [
        "task", "copy_max_len", "copy_min_len", "train", "valid", "tokenizer", "bleu_every", "bleu_sample",
    ]
    static let translationKeys = ["train", "valid", "tokenizer", "bleu_every", "bleu_sample"]

    static func parse(_ document: ConfigJSON, source: String) throws -> (
        String, ModelConfig, TrainingConfig, DataConfig
    ) {
        let root = try ConfigObjectReader(source: source, path: "", value: document, allowedKeys: rootKeys)
        let name = try parseName(root)
        let model = try parseModel(root.object("model", allowedKeys: modelKeys))
        let trainingReader = try root.object("training", allowedKeys: trainingKeys)
        let training = try parseTraining(trainingReader, model: model)
        let data = try parseData(root.object("data", allowedKeys: dataKeys), model: model)
        try checkBestMetric(training.bestMetric, data: data, reader: trainingReader)
        return (name, model, training, data)
    }

    /// BLEU and chrF exist only where validation computes them: the translation task with
    /// `bleu_every` >= 1. Checked after `data` is parsed, but reported at `training.best_metric`.
    static func checkBestMetric(_ metric: BestMetric?, data: DataConfig, reader: ConfigObjectReader) throws {
        guard let metric, metric != .loss else { return }
        if data.task.isToy {
            throw reader.error(
                "best_metric",
                "\"\(metric.rawValue)\" needs task \"translation\": the toy task "
                    + "\"\(data.task.rawValue)\" computes no BLEU or chrF (use \"loss\")")
        }
        if data.bleuEvery == 0 {
            throw reader.error(
                "best_metric",
                "\"\(metric.rawValue)\" needs data.bleu_every >= 1: with 0 no validation "
                    + "computes BLEU or chrF (use \"loss\", or set bleu_every)")
        }
    }

    /// The name becomes the default run directory `runs/<name>`, so it must be a plain file name.
    static func parseName(_ root: ConfigObjectReader) throws -> String {
        let name = try root.string("name")
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "._-".unicodeScalars.contains(scalar))
        }
        guard allowed, !name.hasPrefix(".") else {
            throw root.error(
                "name",
                "\(ConfigJSON.string(name).canonicalText) must contain only letters, digits, "
                    + "'.', '_' and '-', and not start with '.' (it names the run directory)")
        }
        return name
    }

    static func parseModel(_ reader: ConfigObjectReader) throws -> ModelConfig {
        let vocabSize = try reader.integer("vocab_size", minimum: 1, maximum: Int(Int32.max))
        guard vocabSize > SpecialTokens.count else {
            throw reader.error(
                "vocab_size",
                "\(vocabSize) must be greater than \(SpecialTokens.count) "
                    + "(ids 0-3 are the special tokens PAD, BOS, EOS, UNK)")
        }
        let dModel = try reader.integer("d_model", minimum: 1)
        let heads = try reader.integer("heads", minimum: 1)
        guard dModel % heads == 0 else { throw reader.error("heads", "\(heads) does not divide d_model \(dModel)") }
        let dFF = try reader.integer("d_ff", minimum: 1)
        let encoderLayers = try reader.integer("encoder_layers", minimum: 1)
        let decoderLayers = try reader.integer("decoder_layers", minimum: 1)
        let dropout = try reader.float("dropout", default: 0.1, rule: ConfigRange.halfOpenUnit)
        let maxLen = try reader.integer("max_len", default: 64, minimum: 1)
        let norm = try reader.choice("norm", default: NormPlacement.pre, among: NormPlacement.allCases)
        let tieEmbeddings = try reader.bool("tie_embeddings", default: true)
        // `none` exists for model tests only; a trained model needs positions.
        let positional = try reader.choice(
            "positional", default: PositionalKind.sinusoidal, among: [.sinusoidal, .learned])
        if positional == .sinusoidal && dModel % 2 != 0 {
            throw reader.error("d_model", "\(dModel) must be even for sinusoidal positional encoding")
        }
        return ModelConfig(
            vocabSize: vocabSize, dModel: dModel, heads: heads, dFF: dFF, encoderLayers: encoderLayers,
            decoderLayers: decoderLayers, dropout: dropout, maxLen: maxLen, norm: norm,
            tieEmbeddings: tieEmbeddings, positional: positional)
    }

    static func parseTraining(_ reader: ConfigObjectReader, model: ModelConfig) throws -> TrainingConfig {
        let batchTokens = try reader.integer("batch_tokens", minimum: 1)
        guard batchTokens >= model.maxLen else {
            throw reader.error(
                "batch_tokens",
                "\(batchTokens) is smaller than model.max_len \(model.maxLen) "
                    + "(a micro-batch must hold one full-length sequence)")
        }
        let accumulationSteps = try reader.integer("accumulation_steps", default: 1, minimum: 1)
        let maxSteps = try reader.integer("max_steps", minimum: 1)
        let schedule = try reader.choice("schedule", default: ScheduleKind.noam, among: ScheduleKind.allCases)
        let lrFactor = try reader.float("lr_factor", default: 1.0, rule: ConfigRange.positive)
        // Noam divides by warmup, so it needs at least one warmup step; cosine may start at its peak.
        let warmupSteps = try reader.integer("warmup_steps", default: 4000, minimum: schedule == .noam ? 1 : 0)
        let (beta1, beta2) = try parseBetas(reader)
        let eps = try reader.float("eps", default: 1e-9, rule: ConfigRange.positive)
        let weightDecay = try reader.float("weight_decay", default: 0.01, rule: ConfigRange.nonNegative)
        let clipNorm = try reader.float("clip_norm", default: 1.0, rule: ConfigRange.nonNegative)
        let labelSmoothing = try reader.float("label_smoothing", default: 0.1, rule: ConfigRange.halfOpenUnit)
        let seed = try reader.unsignedInteger("seed", default: 1)
        let validateEvery = try reader.integer("validate_every", default: 100, minimum: 1)
        let checkpointEvery = try reader.integer("checkpoint_every", default: 1000, minimum: 1)
        let keepCheckpoints = try reader.integer("keep_checkpoints", default: 3, minimum: 1)
        let activationCheckpointing = try reader.bool("activation_checkpointing", default: false)
        let float16 = try parseFloat16(reader)
        let logEvery = try reader.integer("log_every", default: 10, minimum: 1)
        let validSize = try reader.integer("valid_size", default: 500, minimum: 1)
        let bestMetric: BestMetric? =
            reader.contains("best_metric")
            ? try reader.choice("best_metric", default: nil, among: BestMetric.allCases) : nil
        let patience = try reader.integer("patience", default: 0, minimum: 0)
        return TrainingConfig(
            batchTokens: batchTokens, accumulationSteps: accumulationSteps, maxSteps: maxSteps,
            schedule: schedule, lrFactor: lrFactor, warmupSteps: warmupSteps, beta1: beta1,
            beta2: beta2, eps: eps, weightDecay: weightDecay, clipNorm: clipNorm,
            labelSmoothing: labelSmoothing, seed: seed, validateEvery: validateEvery,
            checkpointEvery: checkpointEvery, keepCheckpoints: keepCheckpoints,
            activationCheckpointing: activationCheckpointing, float16: float16,
            logEvery: logEvery, validSize: validSize, bestMetric: bestMetric, patience: patience)
    }

    static func parseBetas(_ reader: ConfigObjectReader) throws -> (Float, Float) {
        guard let value = reader.fields["betas"] else { return (0.9, 0.98) }
        let problem = "expected an array of two numbers in [0, 1)"
        guard case .array(let items) = value, items.count == 2,
            let first = items[0].numericValue, let second = items[1].numericValue
        else {
            throw reader.error("betas", "\(problem), found \(value.canonicalText)")
        }
        let beta1 = try reader.checkedFloat(
            first, text: items[0].canonicalText, key: "betas[0]", rule: ConfigRange.halfOpenUnit)
        let beta2 = try reader.checkedFloat(
            second, text: items[1].canonicalText, key: "betas[1]", rule: ConfigRange.halfOpenUnit)
        return (beta1, beta2)
    }

    static func parseFloat16(_ reader: ConfigObjectReader) throws -> Float16Options {
        guard let value = reader.fields["float16"] else { return .none }
        if case .bool(let all) = value { return all ? .all : .none }
        guard case .object = value else {
            throw reader.error(
                "float16",
                "expected an object {\"parameters\", \"activations\", \"gradients\"} "
                    + "or true/false, found \(value.foundDescription)")
        }
        let object = try reader.object("float16", allowedKeys: float16Keys)
        return Float16Options(
            parameters: try object.bool("parameters", default: false),
            activations: try object.bool("activations", default: false),
            gradients: try object.bool("gradients", default: false))
    }

    static func parseData(_ reader: ConfigObjectReader, model: ModelConfig) throws -> DataConfig {
        let task = try reader.choice("task", default: nil, among: TaskKind.allCases)
        if task.isToy {
            for key in translationKeys where reader.contains(key) {
                throw reader.error(key, "only used by task \"translation\", not \"\(task.rawValue)\"")
            }
            guard reader.contains("copy_max_len") else {
                throw reader.error("copy_max_len", "missing required key (task \"\(task.rawValue)\" needs it)")
            }
            let copyMaxLen = try reader.integer("copy_max_len", minimum: 1)
            guard copyMaxLen + 2 <= model.maxLen else {
                throw reader.error(
                    "copy_max_len",
                    "\(copyMaxLen) + 2 exceeds model.max_len \(model.maxLen) "
                        + "(the target gets BOS and EOS)")
            }
            let copyMinLen = try reader.integer("copy_min_len", default: 1, minimum: 1, maximum: copyMaxLen)
            return .toy(task, copyMaxLen: copyMaxLen, copyMinLen: copyMinLen)
        }
        for key in ["copy_max_len", "copy_min_len"] where reader.contains(key) {
            throw reader.error(key, "only used by tasks \"copy\" and \"reverse\", not \"translation\"")
        }
        let why = "task \"translation\" needs it"
        return .translation(
            train: try reader.string("train", why: why), valid: try reader.string("valid", why: why),
            tokenizer: try reader.string("tokenizer", why: why),
            bleuEvery: try reader.integer("bleu_every", default: 1, minimum: 0),
            bleuSample: try reader.integer("bleu_sample", default: 500, minimum: 1))
    }
}
