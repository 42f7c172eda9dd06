import CKernels
import TensorCore

/// Sizes of one scaled dot-product attention call. Heads are column blocks of width `headDim`
/// inside the projected Q, K and V rows, so no reshaping copy is needed: BLAS reads them with a
/// leading dimension.
package struct AttentionShape: Sendable, Equatable {
    package var batch: Int
    package var heads: Int
    package var queryLength: Int
    package var keyLength: Int
    package var headDim: Int
    /// Absolute position of query row 0 (non-zero when decoding with a KV cache).
    package var queryOffset: Int = 0
    /// Rows between consecutive sequences' keys and values; a KV cache holds more rows per
    /// sequence (its capacity) than the `keyLength` filled so far. Forward only.
    package var keyBatchRows: Int

    package init(batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int, queryOffset: Int = 0) {
        self.batch = batch
        self.heads = heads
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.headDim = headDim
        self.queryOffset = queryOffset
        keyBatchRows = keyLength
    }

    package var modelWidth: Int { heads * headDim }
    package var probabilityCount: Int { batch * heads * queryLength * keyLength }
}

/// softmax(Q K^T / sqrt(dk) + mask) V with dropout on the probabilities, and its backward.
///
/// Masks follow one convention: `keyMask[b * keyLength + j] == true` means query rows of sequence b
/// may attend to key j; `causal` additionally hides keys after the query's position. A row with no
/// visible key gets all-zero probabilities, so its output and gradients are zero (never NaN).
package enum AttentionKernel {
    /// Writes probabilities `probs` [B,H,Sq,Sk], their dropped-out version `dropped` (may equal
    /// `probs` when dropout is off) and the context `output` [B*Sq, H*dk].
    package static func forward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
        shape s: AttentionShape, keyMask: UnsafePointer<Bool>?, causal: Bool,
        probs: UnsafeMutablePointer<Float>, dropped: UnsafeMutablePointer<Float>,
        output: UnsafeMutablePointer<Float>, dropout: DropoutContext, site: UInt32
    ) {
        let dk = s.headDim, sq = s.queryLength, sk = s.keyLength, d = s.modelWidth
        let scale = 1 / Float(dk).squareRoot()
        let block = sq * sk
        Parallel.rows(s.batch, costPerRow: 4 * s.heads * block * dk) { batches in
            for b in batches {
                for h in 0..<s.heads {
                    let p = probs + (b * s.heads + h) * block
                    BLAS.gemmSerial(
                        transB: true, m: sq, n: sk, k: dk, alpha: scale,
                        a: q + b * sq * ldq + h * dk, lda: ldq, b: k + b * s.keyBatchRows * ldk + h * dk, ldb: ldk,
                        beta: 0, c: p, ldc: sk)
                    softmaxRows(
                        p, rows: sq, columns: sk, keyMask: keyMask.map { $0 + b * sk },
                        causal: causal, queryOffset: s.queryOffset)
                    let pd = dropped + (b * s.heads + h) * block
                    if dropout.isActive {
                        let start = (b * s.heads + h) * block
                        Dropout.apply(probs, dropped, range: start..<(start + block), context: dropout, site: site)
                    }
                    BLAS.gemmSerial(
                        m: sq, n: dk, k: sk, a: dropout.isActive ? pd : p, lda: sk,
                        b: v + b * s.keyBatchRows * ldv + h * dk, ldb: ldv, beta: 0,
                        c: output + b * sq * d + h * dk, ldc: d)
                }
            }
        }
    }

    /// In-place masked softmax of each row (Float32, max subtracted; `ckernels_attention_softmax_row`).
    @inline(__always)
    static func softmaxRows(
        _ p: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        keyMask: UnsafePointer<Bool>?, causal: Bool, queryOffset: Int
    ) {
        for i in 0..<rows {
            let limit = causal ? Swift.min(columns, i + queryOffset + 1) : columns
            ckernels_attention_softmax_row(p + i * columns, Int64(columns), Int64(limit), keyMask)
        }
    }

    /// Given d(output), writes dQ, dK, dV (each overwritten, same layouts as the forward's inputs).
    /// `scratch` holds B*H*Sq*Sk floats.
    package static func backward(
        outputGradient dout: UnsafePointer<Float>,
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
        probs: UnsafePointer<Float>, dropped: UnsafePointer<Float>, shape s: AttentionShape, dropout: DropoutContext,
        dq: UnsafeMutablePointer<Float>, dk dK: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let dk = s.headDim, sq = s.queryLength, sk = s.keyLength, d = s.modelWidth
        let scale = 1 / Float(dk).squareRoot()
        let block = sq * sk
        let active = dropout.isActive, keep = dropout.keepScale
        Parallel.rows(s.batch, costPerRow: 8 * s.heads * block * dk) { batches in
            for b in batches {
                for h in 0..<s.heads {
                    let off = (b * s.heads + h) * block
                    let p = probs + off, pd = active ? dropped + off : p, ds = scratch + off
                    let dctx = dout + b * sq * d + h * dk
                    let vb = v + b * sk * ldv + h * dk, kb = k + b * sk * ldk + h * dk, qb = q + b * sq * ldq + h * dk
                    // d(dropped probs) = dctx V^T ; dV = dropped^T dctx
                    BLAS.gemmSerial(
                        transB: true, m: sq, n: sk, k: dk, a: dctx, lda: d, b: vb, ldb: ldv, beta: 0, c: ds, ldc: sk)
                    BLAS.gemmSerial(
                        transA: true, m: sk, n: dk, k: sq, a: pd, lda: sk, b: dctx, ldb: d,
                        beta: 0, c: dv + b * sk * ldv + h * dk, ldc: ldv)
                    // Through dropout (kept entries are exactly the non-zero ones) and softmax.
                    for i in 0..<sq {
                        ckernels_softmax_backward_row(
                            p + i * sk, active ? pd + i * sk : nil, keep, ds + i * sk, Int64(sk))
                    }
                    BLAS.gemmSerial(
                        m: sq, n: dk, k: sk, alpha: scale, a: ds, lda: sk, b: kb, ldb: ldk,
                        beta: 0, c: dq + b * sq * ldq + h * dk, ldc: ldq)
                    BLAS.gemmSerial(
                        transA: true, m: sk, n: dk, k: sq, alpha: scale, a: ds, lda: sk, b: qb, ldb: ldq,
                        beta: 0, c: dK + b * sk * ldk + h * dk, ldc: ldk)
                }
            }
        }
    }
}
