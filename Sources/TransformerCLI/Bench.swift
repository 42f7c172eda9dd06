import ArgumentParser
import Foundation
import TensorCore
import Training
import TransformerModel

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks.",
        subcommands: [BenchTrain.self, BenchHalf.self, BenchWire.self, BenchGemm.self, BenchDecode.self])
}

/// Times full training steps (forward, loss, backward, clipping, AdamW) on a fixed random batch
/// without padding, after warm-up steps; prints one JSON line. `--float16 activations` stores the
/// activations stashed for backward in Float16; `parameters` makes the replica hold Float16
/// weights (the Float32 master weights and the optimizer live beside it in this process);
/// `gradients` is a wire format between workers and coordinator, accepted here but without
/// effect on a single replica (the JSON says so).
///
/// `gflops_per_step` counts the matrix products of one step exactly (`StepProducts`: every
/// Linear forward and backward, attention's Q K^T and P V per head and their backward, the
/// vocabulary projection; not elementwise work, not checkpointing's recomputation);
/// `fraction_of_gemm_peak` divides the step's GFLOP/s by the square 2048^3 sgemm's GFLOP/s,
/// measured in this process at the same thread count right after the timed steps (`--no-gemm-peak`
/// skips it, e.g. when two benchmarks run at once and it would slow the other one's last step).
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Time full training steps.")
    @Option(help: "Config name or file.") var config: String
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "Timed steps.") var steps: Int = 5
    @Option(help: "Warm-up steps (not timed).") var warmup: Int = 2
    @Option(help: "Sentence pairs per batch.") var batch: Int = 64
    @Option(help: "Source length.") var srcLen: Int = 32
    @Option(help: "Target length.") var tgtLen: Int = 32
    @Flag(help: "Recompute activations in backward.") var activationCheckpointing = false
    @Option(help: "Float16 storage: none, all, or a list of parameters,activations,gradients.") var float16 = "none"
    @Flag(inversion: .prefixedNo, help: "Time the 2048^3 sgemm after the steps (for fraction_of_gemm_peak).")
    var gemmPeak = true

    func validate() throws {
        guard threads >= 1, steps >= 1, warmup >= 0, batch >= 1, srcLen >= 1, tgtLen >= 1 else {
            throw ValidationError("--threads, --steps, --batch, --src-len, --tgt-len must be positive")
        }
    }

    func run() throws {
        try reportingErrors {
            let cfg = try RunConfig.load(nameOrPath: config)
            let f16 = try Float16Options.parse(float16)
            guard srcLen <= cfg.model.maxLen, tgtLen <= cfg.model.maxLen else {
                throw ValidationError("--src-len/--tgt-len exceed model.max_len \(cfg.model.maxLen)")
            }
            Parallel.threads = threads
            let model = Transformer(config: cfg.model, seed: cfg.training.seed, float16Parameters: f16.parameters)
            model.activationCheckpointing = activationCheckpointing
            model.float16Activations = f16.activations
            let optimizer = OptimizerStep(layout: model.arena.layout, config: cfg)
            // Float16 parameters: the replica holds Float16 weights; the Float32 master weights the
            // optimizer updates live beside it (as on a coordinator) and are loaded back each step.
            let master: FloatBuffer? = f16.parameters ? FloatBuffer(count: model.arena.layout.totalCount) : nil
            if let master { model.readParameters(into: master.pointer) }
            var rng = RandomStream(seed: 12345, stream: 7)
            let v = cfg.model.vocabSize
            func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.int(in: 4..<v)) } }
            let source = tokens(batch * srcLen), targetInput = tokens(batch * tgtLen),
                targetOutput = tokens(batch * tgtLen)
            let data = Batch(
                batchSize: batch, sourceLength: srcLen, targetLength: tgtLen, source: source,
                targetInput: targetInput, targetOutput: targetOutput)
            let replica = ReplicaTrainer(
                model: model, data: FixedBatchData(batch: data), labelSmoothing: cfg.training.labelSmoothing,
                seed: cfg.training.seed)
            var times: [Double] = []
            for step in 1...(warmup + steps) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let stats = try replica.computeGradients(step: step, microBatches: [0])
                _ = optimizer.apply(
                    parameters: master?.pointer ?? model.arena.values.pointer,
                    gradients: model.arena.gradients.pointer,
                    count: model.arena.layout.totalCount, tokens: stats.tokens)
                if let master { model.loadParameters(from: master.pointer) }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if step > warmup { times.append(dt) }
            }
            // Read before the reference product allocates its operands.
            let peakRSS = peakResidentBytes()
            let peak = gemmPeak ? GemmTimer().squareGFLOPS() : nil
            let flops = Double(
                StepProducts(config: cfg.model, batch: batch, sourceLength: srcLen, targetLength: tgtLen).totalFLOPs)
            times.sort()
            let median =
                times.count % 2 == 1
                ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            var result: [String: Any] = [
                "config": cfg.name, "threads": threads, "batch": batch, "src_len": srcLen, "tgt_len": tgtLen,
                "blas_kernels": BLASKernels.coreName, "pool_spin_us": Parallel.spinMicroseconds,
                "steps": steps, "tokens_per_second": Double(batch * tgtLen) / median, "step_seconds_median": median,
                "step_seconds_min": times.first ?? 0, "step_seconds_max": times.last ?? 0,
                "peak_rss_bytes": peakRSS, "parameters": model.parameterCount,
                "activation_checkpointing": activationCheckpointing, "float16": float16,
                "float16_activations": f16.activations && !activationCheckpointing,
                "float16_parameters": f16.parameters,
                "activation_bytes": model.activationBytes,
                "replica_parameter_bytes": model.parameterStorageBytes,
                "gflops_per_step": flops / 1e9, "gflops_per_second": flops / median / 1e9,
            ]
            if let peak {
                result["gemm_peak_gflops_per_second"] = peak
                result["gemm_peak_size"] = GemmTimer.squareSize
                result["fraction_of_gemm_peak"] = flops / median / 1e9 / peak
            }
            if activationCheckpointing {
                result["gflops_note"] = "gflops_per_step excludes the recomputed layer forwards"
            }
            if let master {
                result["master_parameter_bytes"] = master.allocatedBytes
                result["float16_parameters_note"] = "peak RSS includes the Float32 master weights kept in this process"
            }
            if f16.activations && activationCheckpointing {
                result["float16_activations_note"] = "no effect: activation checkpointing stores no layer stash"
            }
            if f16.gradients {
                result["float16_gradients_note"] = "wire format only: no effect on a single replica (nothing is sent)"
            }
            FileHandle.standardOutput.write(RunLog.jsonLine(result))
        }
    }
}

/// One fixed batch served for every micro-batch index (benchmarks).
struct FixedBatchData: TrainingData {
    let batch: Batch
    func microBatch(index: Int) -> Batch { batch }
    var validationPairs: [(source: [Int32], target: [Int32])] { [] }
    var reportsSequenceAccuracy: Bool { false }
    var tokenizerHash: String { "" }
}
