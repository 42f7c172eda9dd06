import ArgumentParser
import Foundation
import TensorCore
import Training
import TransformerModel

/// `transformer bench decode`: times greedy (or `--beam K`) decoding with the KV cache on a model
/// with random weights (seeded by the config), a random source batch without padding, and a fixed
/// output length: the decoders run `--new-tokens` steps whatever they predict (`runsToMaxLength`),
/// so every run does the same work. One timed decode covers encoding the source, every step and
/// the token choice. Prints one JSON line; `generated_tokens_per_second` is batch x new tokens /
/// median decode seconds (a beam search counts its sentences' tokens, not its hypotheses').
/// `Scripts/bench/pytorch_decode_bench.py` prints the same fields for PyTorch. With
/// `--float16-parameters` the weight matrices are stored in Float16 (as `translate
/// --float16-parameters` loads a checkpoint).
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Time fixed-length decoding.")
    @Option(help: "Config name or file.") var config: String
    @Option(help: "Sentences per batch.") var batch: Int = 1
    @Option(help: "Source length.") var srcLen: Int = 32
    @Option(help: "Tokens generated per sentence.") var newTokens: Int = 32
    @Option(help: "Beam width (1: greedy).") var beam: Int = 1
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "Timed decodes; the median counts.") var repeats: Int = 3
    @Option(help: "Untimed decodes first.") var warmup: Int = 1
    @Flag(help: "Store the weight matrices in Float16 (decoding reads them in place: half the bytes).")
    var float16Parameters = false

    func validate() throws {
        guard batch >= 1, srcLen >= 1, newTokens >= 1, beam >= 1, threads >= 1, repeats >= 1, warmup >= 0 else {
            throw ValidationError("--batch, --src-len, --new-tokens, --beam, --threads, --repeats must be positive")
        }
    }

    func run() throws {
        try reportingErrors {
            let cfg = try RunConfig.load(nameOrPath: config)
            guard srcLen <= cfg.model.maxLen, newTokens <= cfg.model.maxLen else {
                throw ValidationError("--src-len/--new-tokens exceed model.max_len \(cfg.model.maxLen)")
            }
            Parallel.threads = threads
            let model = Transformer(
                config: cfg.model, seed: cfg.training.seed, float16Parameters: float16Parameters)
            var rng = RandomStream(seed: 12345, stream: 11)
            let v = cfg.model.vocabSize
            let sources = (0..<batch).map { _ in (0..<srcLen).map { _ in Int32(rng.int(in: SpecialTokens.count..<v)) } }
            let run = try decodeRunner(model: model, sources: sources)
            var times: [Double] = []
            for i in 0..<(warmup + repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let positions = try run()
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                // Fixed length is what makes runs comparable: check it rather than trust it.
                guard positions == newTokens else {
                    throw ValidationError("decoding stopped after \(positions) of \(newTokens) steps")
                }
                if i >= warmup { times.append(dt) }
            }
            times.sort()
            let median =
                times.count % 2 == 1
                ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            FileHandle.standardOutput.write(
                RunLog.jsonLine([
                    "impl": "ours", "decoder": beam > 1 ? "beam" : "greedy", "kv_cache": true,
                    "config": cfg.name, "batch": batch, "src_len": srcLen, "new_tokens": newTokens, "beam": beam,
                    "threads": threads, "repeats": repeats, "warmup": warmup, "blas_kernels": BLASKernels.coreName,
                    "pool_spin_us": Parallel.spinMicroseconds, "float16_parameters": float16Parameters,
                    "generated_tokens_per_second": Double(batch * newTokens) / median,
                    "ms_per_step": median / Double(newTokens) * 1000,
                    "decode_seconds_median": median, "decode_seconds_min": times.first ?? 0,
                    "decode_seconds_max": times.last ?? 0,
                    "peak_rss_bytes": peakResidentBytes(), "parameters": model.parameterCount,
                ]))
        }
    }

    /// One decode of `sources` per call, returning the positions the decoder ran.
    private func decodeRunner(model: Transformer, sources: [[Int32]]) throws -> () throws -> Int {
        let n = newTokens
        if beam == 1 {
            var greedy = GreedyDecoder(model: model)
            greedy.runsToMaxLength = true
            return { [greedy] in
                _ = try greedy.decode(sources, maxLength: n)
                return greedy.decoder.position
            }
        }
        var search = try BeamSearchDecoder(model: model, beamWidth: beam)
        search.runsToMaxLength = true
        return { [search] in
            _ = try search.decode(sources, maxLength: n)
            return search.decoder.position
        }
    }
}
