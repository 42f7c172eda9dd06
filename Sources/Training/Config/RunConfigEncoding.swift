import TransformerModel

/// Builds the JSON document of a configuration held in memory, with every key explicit, so
/// `RunConfig(name:model:training:data:)` goes through the same validation as a file.
enum RunConfigEncoding {
    static func document(name: String, model: ModelConfig, training: TrainingConfig, data: DataConfig) -> ConfigJSON {
        let modelObject: [String: ConfigJSON] = [
            "vocab_size": integer(model.vocabSize), "d_model": integer(model.dModel), "heads": integer(model.heads),
            "d_ff": integer(model.dFF), "encoder_layers": integer(model.encoderLayers),
            "decoder_layers": integer(model.decoderLayers), "dropout": float(model.dropout),
            "max_len": integer(model.maxLen), "norm": .string(model.norm.rawValue),
            "tie_embeddings": .bool(model.tieEmbeddings), "positional": .string(model.positional.rawValue),
        ]
        let t = training
        var trainingObject: [String: ConfigJSON] = [
            "batch_tokens": integer(t.batchTokens), "accumulation_steps": integer(t.accumulationSteps),
            "max_steps": integer(t.maxSteps), "schedule": .string(t.schedule.rawValue), "lr_factor": float(t.lrFactor),
            "warmup_steps": integer(t.warmupSteps), "betas": .array([float(t.beta1), float(t.beta2)]),
            "eps": float(t.eps), "weight_decay": float(t.weightDecay), "clip_norm": float(t.clipNorm),
            "label_smoothing": float(t.labelSmoothing), "seed": unsigned(t.seed),
            "validate_every": integer(t.validateEvery), "checkpoint_every": integer(t.checkpointEvery),
            "keep_checkpoints": integer(t.keepCheckpoints),
            "activation_checkpointing": .bool(t.activationCheckpointing),
            "float16": float16(t.float16), "log_every": integer(t.logEvery), "valid_size": integer(t.validSize),
        ]
        // Written only when set, so configs from before these keys keep their rawJSON and hash.
        if let metric = t.bestMetric { trainingObject["best_metric"] = .string(metric.rawValue) }
        if t.patience != 0 { trainingObject["patience"] = integer(t.patience) }
        var dataObject: [String: ConfigJSON] = ["task": .string(data.task.rawValue)]
        if data.task.isToy || data.copyMaxLen != 0 { dataObject["copy_max_len"] = integer(data.copyMaxLen) }
        if data.task.isToy && data.copyMinLen != 1 { dataObject["copy_min_len"] = integer(data.copyMinLen) }
        if let train = data.train { dataObject["train"] = .string(train) }
        if let valid = data.valid { dataObject["valid"] = .string(valid) }
        if let tokenizer = data.tokenizer {
            dataObject["tokenizer"] = .string(tokenizer)
            dataObject["bleu_every"] = integer(data.bleuEvery)
            dataObject["bleu_sample"] = integer(data.bleuSample)
        }
        return .object([
            "name": .string(name), "model": .object(modelObject),
            "training": .object(trainingObject), "data": .object(dataObject),
        ])
    }

    static func integer(_ value: Int) -> ConfigJSON { .integer(Int64(value)) }

    static func unsigned(_ value: UInt64) -> ConfigJSON {
        value <= UInt64(Int64.max) ? .integer(Int64(value)) : .unsignedInteger(value)
    }

    /// Via the Float's shortest decimal form, so 0.1 is written `0.1`, not `0.10000000149011612`.
    static func float(_ value: Float) -> ConfigJSON { .double(Double(value.description) ?? Double(value)) }

    static func float16(_ options: Float16Options) -> ConfigJSON {
        .object([
            "parameters": .bool(options.parameters), "activations": .bool(options.activations),
            "gradients": .bool(options.gradients),
        ])
    }
}
