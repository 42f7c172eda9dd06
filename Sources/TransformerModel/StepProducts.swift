/// One matrix product as BLAS sees it: row-major C[m, n] = op(A) op(B), op(A) [m, k], op(B) [k, n].
package struct GemmShape: Hashable, Sendable {
    package var transA: Bool
    package var transB: Bool
    package var m: Int
    package var n: Int
    package var k: Int

    package init(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int) {
        self.transA = transA
        self.transB = transB
        self.m = m
        self.n = n
        self.k = k
    }

    /// 2 m n k: one multiply and one add per term.
    package var flops: Int { 2 * m * n * k }
}

/// Every matrix product of one training step (forward, then backward) of `Transformer` on a batch
/// of `batch` sequences, `sourceLength` source and `targetLength` target tokens without padding,
/// with how often each runs. It is the reference for `bench train`'s `gflops_per_step` and the
/// list of shapes `bench gemm` times.
///
/// What is counted, per layer (n = B*S source rows, m = B*T target rows, H heads of width dk,
/// H*dk = D):
/// - every `Linear` (the fused Q/K/V projection [rows, D] x [D, 3D], cross-attention's Q [m, D] x
///   [D, D] and K/V [n, D] x [D, 2D], the output projection [rows, D] x [D, D], the feed-forward
///   [rows, D] x [D, d_ff] and [rows, d_ff] x [d_ff, D]), and the vocabulary projection
///   [m, D] x [D, V] once per step;
/// - attention per sequence and head: Q K^T [Sq, dk] x [dk, Sk] and P V [Sq, Sk] x [Sk, dk],
///   counted whole (the causal half and padded keys are computed, then masked).
/// Backward costs exactly twice the forward: every `Linear` computes dW = dy^T x and dx = dy W
/// (dx also for the first layer, whose input gradient reaches the embedding), and attention
/// computes dP = dC V^T, dV = P^T dC, dQ = dS K and dK = dS^T Q per head.
/// In closed form: encoder layer 8nD^2 + 4nD*d_ff + 4BS^2*D; decoder layer 12mD^2 + 4nD^2 +
/// 4mD*d_ff + 4BT(T+S)D; forward = layers x those + 2mDV (the vocabulary); step = 3 x forward.
/// Not counted: elementwise work (bias, softmax, dropout, ReLU, LayerNorm, residuals, loss),
/// embedding lookups, the optimizer, and activation checkpointing's recomputation (the figure is
/// the model's work per step, the same with or without checkpointing).
package struct StepProducts: Sendable {
    package enum Pass: String, Sendable { case forward, backward }

    /// One product shape and how many times a step runs it. `perHead` products are the small
    /// attention products, run as one single-threaded call per (sequence, head) spread over the
    /// threads; the others are whole-batch `BLAS.gemm` calls.
    package struct Product: Sendable {
        package var name: String
        package var pass: Pass
        package var shape: GemmShape
        package var count: Int
        package var perHead: Bool
        package var flops: Int { shape.flops * count }
    }

    package let products: [Product]

    package init(config c: ModelConfig, batch b: Int, sourceLength s: Int, targetLength t: Int) {
        let d = c.dModel, f = c.dFF, v = c.vocabSize, h = c.heads, dk = c.headDim
        let n = b * s, m = b * t
        var list: [Product] = []
        // A Linear y[rows, out] = x[rows, in] W^T: forward, then dW = dy^T x and dx = dy W.
        func linear(_ name: String, rows: Int, input: Int, output: Int, times: Int) {
            guard times > 0 else { return }
            list.append(
                Product(
                    name: name, pass: .forward, shape: GemmShape(transB: true, m: rows, n: output, k: input),
                    count: times, perHead: false))
            list.append(
                Product(
                    name: name + " dW", pass: .backward, shape: GemmShape(transA: true, m: output, n: input, k: rows),
                    count: times, perHead: false))
            list.append(
                Product(
                    name: name + " dx", pass: .backward, shape: GemmShape(m: rows, n: input, k: output),
                    count: times, perHead: false))
        }
        // softmax(Q K^T) V for Sq queries and Sk keys, per sequence and head, and its backward.
        func attention(_ name: String, queries sq: Int, keys sk: Int, layers: Int) {
            guard layers > 0 else { return }
            let times = layers * b * h
            func add(_ suffix: String, _ pass: Pass, _ shape: GemmShape) {
                list.append(Product(name: name + suffix, pass: pass, shape: shape, count: times, perHead: true))
            }
            add(" QK^T", .forward, GemmShape(transB: true, m: sq, n: sk, k: dk))
            add(" PV", .forward, GemmShape(m: sq, n: dk, k: sk))
            add(" dP", .backward, GemmShape(transB: true, m: sq, n: sk, k: dk))
            add(" dV", .backward, GemmShape(transA: true, m: sk, n: dk, k: sq))
            add(" dQ", .backward, GemmShape(m: sq, n: dk, k: sk))
            add(" dK", .backward, GemmShape(transA: true, m: sk, n: dk, k: sq))
        }
        let le = c.encoderLayers, ld = c.decoderLayers
        linear("encoder self_attn.in_proj", rows: n, input: d, output: 3 * d, times: le)
        attention("encoder self_attn", queries: s, keys: s, layers: le)
        linear("encoder self_attn.out_proj", rows: n, input: d, output: d, times: le)
        linear("encoder linear1", rows: n, input: d, output: f, times: le)
        linear("encoder linear2", rows: n, input: f, output: d, times: le)
        linear("decoder self_attn.in_proj", rows: m, input: d, output: 3 * d, times: ld)
        attention("decoder self_attn", queries: t, keys: t, layers: ld)
        linear("decoder self_attn.out_proj", rows: m, input: d, output: d, times: ld)
        linear("decoder multihead_attn.in_proj Q", rows: m, input: d, output: d, times: ld)
        linear("decoder multihead_attn.in_proj KV", rows: n, input: d, output: 2 * d, times: ld)
        attention("decoder multihead_attn", queries: t, keys: s, layers: ld)
        linear("decoder multihead_attn.out_proj", rows: m, input: d, output: d, times: ld)
        linear("decoder linear1", rows: m, input: d, output: f, times: ld)
        linear("decoder linear2", rows: m, input: f, output: d, times: ld)
        linear("output projection", rows: m, input: d, output: v, times: 1)
        products = list
    }

    package var forwardFLOPs: Int { products.filter { $0.pass == .forward }.reduce(0) { $0 + $1.flops } }
    package var backwardFLOPs: Int { products.filter { $0.pass == .backward }.reduce(0) { $0 + $1.flops } }
    /// Floating-point operations of the matrix products of one step (forward + backward).
    package var totalFLOPs: Int { products.reduce(0) { $0 + $1.flops } }
}
