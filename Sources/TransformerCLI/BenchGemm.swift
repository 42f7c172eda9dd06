import ArgumentParser
import Foundation
import TensorCore
import Training
import TransformerModel

/// `transformer bench gemm`: what this machine's sgemm gives at the shapes a training step of a
/// config uses, through the same calls the model makes (`BLAS.gemm` for the whole-batch products,
/// one `BLAS.gemmSerial` per sequence and head for attention), plus a square product, at 1 and 2
/// threads (or `--threads`). Prints one JSON line.
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "Time sgemm at a training step's shapes.")
    @Option(help: "Config name or file whose step shapes are timed.") var config = "base"
    @Option(help: "Sentence pairs per batch.") var batch: Int = 64
    @Option(help: "Source length.") var srcLen: Int = 32
    @Option(help: "Target length.") var tgtLen: Int = 32
    @Option(help: "Compute threads (default: 1 and 2).") var threads: Int?
    @Option(help: "Timed repetitions per shape; the median counts.") var repeats = 3
    @Option(help: "Minimum seconds of one repetition (calls are repeated to fill it).") var minSeconds = 0.05
    @Option(help: "Size of the square reference product.") var square = GemmTimer.squareSize

    func validate() throws {
        guard batch >= 1, srcLen >= 1, tgtLen >= 1, repeats >= 1, square >= 1, minSeconds >= 0 else {
            throw ValidationError("--batch, --src-len, --tgt-len, --repeats, --square must be positive")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let cfg = try RunConfig.load(nameOrPath: config)
            let step = StepProducts(config: cfg.model, batch: batch, sourceLength: srcLen, targetLength: tgtLen)
            let groups = GemmShapeGroup.group(step.products)
            let timer = GemmTimer(repeats: repeats, minSeconds: minSeconds)
            var results: [[String: Any]] = []
            for t in threads.map({ [$0] }) ?? [1, 2] {
                Parallel.threads = t
                let squareRate = timer.gflops(GemmShape(m: square, n: square, k: square))
                var shapes: [[String: Any]] = []
                var stepSeconds = 0.0, peak = squareRate
                for g in groups {
                    let rate = timer.gflops(g.shape, perHeadCalls: g.perHead ? batch * cfg.model.heads : nil)
                    peak = max(peak, rate)
                    stepSeconds += Double(g.shape.flops * g.count) / (rate * 1e9)
                    shapes.append([
                        "products": g.names, "trans_a": g.shape.transA, "trans_b": g.shape.transB,
                        "m": g.shape.m, "n": g.shape.n, "k": g.shape.k, "calls_per_step": g.count,
                        "per_head": g.perHead, "gflops_per_second": rate,
                    ])
                }
                results.append([
                    "threads": t, "square_gflops_per_second": squareRate, "peak_gflops_per_second": peak,
                    // The step's products run back to back at the rates measured here: the
                    // seconds a step would take if it did nothing but its sgemm calls.
                    "step_gemm_seconds": stepSeconds,
                    "step_gemm_gflops_per_second": Double(step.totalFLOPs) / stepSeconds / 1e9,
                    "shapes": shapes,
                ])
            }
            FileHandle.standardOutput.write(
                RunLog.jsonLine([
                    "config": cfg.name, "batch": batch, "src_len": srcLen, "tgt_len": tgtLen,
                    "blas_kernels": BLASKernels.coreName, "square_size": square,
                    "gflops_per_step": Double(step.totalFLOPs) / 1e9, "results": results,
                ]))
        }
    }
}

/// Products of a step with the same shape and call style, timed once.
struct GemmShapeGroup {
    var shape: GemmShape
    var perHead: Bool
    var count: Int
    var names: [String]

    /// Groups in order of first appearance.
    static func group(_ products: [StepProducts.Product]) -> [GemmShapeGroup] {
        var groups: [GemmShapeGroup] = []
        for p in products {
            if let i = groups.firstIndex(where: { $0.shape == p.shape && $0.perHead == p.perHead }) {
                groups[i].count += p.count
                groups[i].names.append(p.name)
            } else {
                groups.append(GemmShapeGroup(shape: p.shape, perHead: p.perHead, count: p.count, names: [p.name]))
            }
        }
        return groups
    }
}

/// Times sgemm through the project's own entry points on random operands, at the process's
/// current `Parallel.threads`.
struct GemmTimer {
    /// The square reference product ("the machine's sgemm peak").
    static let squareSize = 2048
    var repeats = 3
    var minSeconds = 0.05

    /// Median GFLOP/s over `repeats` repetitions, each of as many calls as fill `minSeconds` (the
    /// calibration calls warm up caches and threads first). `perHeadCalls`: that many independent
    /// single-threaded products on separate operands, spread over the threads by `Parallel.rows`
    /// as the attention kernel does; nil: one `BLAS.gemm` call.
    func gflops(_ s: GemmShape, perHeadCalls: Int? = nil) -> Double {
        let calls = perHeadCalls ?? 1
        let aCount = s.m * s.k, bCount = s.k * s.n, cCount = s.m * s.n
        let a = FloatBuffer(count: aCount * calls), b = FloatBuffer(count: bCount * calls),
            c = FloatBuffer(count: cCount * calls)
        var rng = RandomStream(seed: 99, stream: 3)
        for i in 0..<a.count { a.pointer[i] = rng.uniform() - 0.5 }
        for i in 0..<b.count { b.pointer[i] = rng.uniform() - 0.5 }
        // Stored [k, m] when transposed, [m, k] otherwise (and likewise for B): leading dimensions.
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        let ap = UnsafePointer(a.pointer), bp = UnsafePointer(b.pointer), cp = c.pointer
        func once() {
            if perHeadCalls == nil {
                BLAS.gemm(
                    transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: ap, lda: lda, b: bp, ldb: ldb,
                    c: cp, ldc: s.n)
                return
            }
            Parallel.rows(calls, costPerRow: s.flops) { range in
                for i in range {
                    BLAS.gemmSerial(
                        transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: ap + i * aCount, lda: lda,
                        b: bp + i * bCount, ldb: ldb, c: cp + i * cCount, ldc: s.n)
                }
            }
        }
        func seconds(_ iterations: Int) -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { once() }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        var iterations = 1
        while seconds(iterations) < minSeconds && iterations < 1 << 20 { iterations *= 2 }
        var rates: [Double] = []
        for _ in 0..<repeats { rates.append(Double(s.flops * calls * iterations) / seconds(iterations) / 1e9) }
        rates.sort()
        return rates.count % 2 == 1 ? rates[rates.count / 2] : (rates[rates.count / 2 - 1] + rates[rates.count / 2]) / 2
    }

    /// The square reference product's GFLOP/s at the current thread count.
    func squareGFLOPS() -> Double {
        gflops(GemmShape(m: GemmTimer.squareSize, n: GemmTimer.squareSize, k: GemmTimer.squareSize))
    }
}
