import TensorCore

/// Multi-head attention with PyTorch's fused input projection `in_proj_weight` [3D, D] (rows Q, K, V).
/// Self-attention projects Q, K, V in one GEMM; cross-attention projects Q from the decoder and K, V
/// from the encoder memory with the lower 2D rows of the same weight.
final class MultiHeadAttention {
    let wIn: ParameterRef, bIn: ParameterRef, wOut: ParameterRef, bOut: ParameterRef
    let d: Int, heads: Int
    /// Projections, probabilities, context and output; owned by this layer or shared by all
    /// layers (see `LayerActivations`).
    var activations = AttentionActivations()
    private var input: UnsafePointer<Float>?
    private var memory: UnsafePointer<Float>?
    private var shape = AttentionShape(batch: 0, heads: 0, queryLength: 0, keyLength: 0, headDim: 0)
    private var dropout = DropoutContext.disabled
    private var site: UInt32 = 0

    init(_ arena: ParameterArena, _ prefix: String, d: Int, heads: Int) {
        wIn = arena.ref(prefix + ".in_proj_weight")
        bIn = arena.ref(prefix + ".in_proj_bias")
        wOut = arena.ref(prefix + ".out_proj.weight")
        bOut = arena.ref(prefix + ".out_proj.bias")
        self.d = d
        self.heads = heads
    }

    /// Self-attention over x [B*S, D].
    @discardableResult
    func forward(
        _ x: UnsafePointer<Float>, batch: Int, length: Int, keyMask: UnsafePointer<Bool>, causal: Bool,
        dropout: DropoutContext, site: UInt32
    ) -> UnsafeMutablePointer<Float> {
        input = x
        memory = nil
        self.dropout = dropout
        self.site = site
        shape = AttentionShape(batch: batch, heads: heads, queryLength: length, keyLength: length, headDim: d / heads)
        let p = project(x, rows: batch * length, outFeatures: 3 * d)
        return attend(
            q: p, ldq: 3 * d, k: p + d, ldk: 3 * d, v: p + 2 * d, ldv: 3 * d, shape: shape,
            keyMask: keyMask, causal: causal, dropout: dropout, site: site)
    }

    /// Cross-attention: queries from x [B*Sq, D], keys and values from memory [B*Sk, D].
    @discardableResult
    func forward(
        _ x: UnsafePointer<Float>, memory mem: UnsafePointer<Float>, batch: Int, queryLength: Int, keyLength: Int,
        keyMask: UnsafePointer<Bool>, dropout: DropoutContext, site: UInt32
    ) -> UnsafeMutablePointer<Float> {
        input = x
        memory = mem
        self.dropout = dropout
        self.site = site
        shape = AttentionShape(
            batch: batch, heads: heads, queryLength: queryLength, keyLength: keyLength, headDim: d / heads)
        let q = project(x, rows: batch * queryLength, outFeatures: d)
        let keyValues = activations.keyValues
        keyValues.resize(batch * keyLength * 2 * d)
        projectKeyValues(mem, rows: batch * keyLength, into: keyValues.pointer)
        let kv = keyValues.pointer
        return attend(
            q: q, ldq: d, k: kv, ldk: 2 * d, v: kv + d, ldv: 2 * d, shape: shape,
            keyMask: keyMask, causal: false, dropout: dropout, site: site)
    }

    /// One incremental decoding step of self-attention. x [B, D] is position `position` of each
    /// sequence: its keys and values are appended to `cache` ([B, capacity, 2D], K then V, rows
    /// 0..<position already filled) and its query attends to positions 0...position. The same
    /// projection and attention code as `forward` (causality holds by construction: later
    /// positions are not in the cache yet), without dropout and without stashing for backward.
    func step(
        _ x: UnsafePointer<Float>, batch: Int, position: Int, cache: UnsafeMutablePointer<Float>,
        capacity: Int
    ) -> UnsafeMutablePointer<Float> {
        let p = project(x, rows: batch, outFeatures: 3 * d)
        for b in 0..<batch {
            (cache + (b * capacity + position) * 2 * d).update(from: p + b * 3 * d + d, count: 2 * d)
        }
        var stepShape = AttentionShape(
            batch: batch, heads: heads, queryLength: 1, keyLength: position + 1, headDim: d / heads)
        stepShape.keyBatchRows = capacity
        return attend(
            q: p, ldq: 3 * d, k: cache, ldk: 2 * d, v: cache + d, ldv: 2 * d, shape: stepShape,
            keyMask: nil, causal: false, dropout: .disabled, site: 0)
    }

    /// One incremental decoding step of cross-attention: queries from x [B, D], keys and values
    /// `keyValues` [B*Sk, 2D] projected once per source batch by `projectKeyValues`.
    func step(
        _ x: UnsafePointer<Float>, batch: Int, keyValues kv: UnsafePointer<Float>, keyLength: Int,
        keyMask: UnsafePointer<Bool>
    ) -> UnsafeMutablePointer<Float> {
        let q = project(x, rows: batch, outFeatures: d)
        let stepShape = AttentionShape(
            batch: batch, heads: heads, queryLength: 1, keyLength: keyLength, headDim: d / heads)
        return attend(
            q: q, ldq: d, k: kv, ldk: 2 * d, v: kv + d, ldv: 2 * d, shape: stepShape,
            keyMask: keyMask, causal: false, dropout: .disabled, site: 0)
    }

    /// Keys and values [rows, 2D] of `memory` [rows, D] for cross-attention, with the lower 2D
    /// rows of `in_proj_weight`: what `forward` computes per call and decoding once per source batch.
    func projectKeyValues(_ memory: UnsafePointer<Float>, rows: Int, into keyValues: UnsafeMutablePointer<Float>) {
        Linear.forward(
            memory, rows: rows, inFeatures: d, outFeatures: 2 * d, weight: wIn, weightOffset: d * d,
            bias: bIn.value + d, output: keyValues)
    }

    /// The input projection into the stash's `projections` [rows, outFeatures]: Q, K, V (3D) for
    /// self-attention, Q alone (D, the upper rows of the weight) for cross-attention.
    private func project(_ x: UnsafePointer<Float>, rows: Int, outFeatures: Int) -> UnsafeMutablePointer<Float> {
        let projections = activations.projections
        projections.resize(rows * outFeatures)
        Linear.forward(
            x, rows: rows, inFeatures: d, outFeatures: outFeatures, weight: wIn, bias: bIn.value,
            output: projections.pointer)
        return projections.pointer
    }

    /// Scaled dot-product attention and the output projection, into the stash; the one path of
    /// both `forward`s and both `step`s.
    private func attend(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
        shape: AttentionShape, keyMask: UnsafePointer<Bool>?, causal: Bool, dropout: DropoutContext,
        site: UInt32
    ) -> UnsafeMutablePointer<Float> {
        let nq = shape.batch * shape.queryLength
        let a = activations, probs = a.probs, dropped = a.dropped, context = a.context, output = a.output
        probs.resize(shape.probabilityCount)
        if dropout.isActive { dropped.resize(shape.probabilityCount) }
        context.resize(nq * d)
        output.resize(nq * d)
        AttentionKernel.forward(
            q: q, ldq: ldq, k: k, ldk: ldk, v: v, ldv: ldv, shape: shape, keyMask: keyMask,
            causal: causal, probs: probs.pointer, dropped: dropout.isActive ? dropped.pointer : probs.pointer,
            output: context.pointer, dropout: dropout, site: site)
        Linear.forward(
            context.pointer, rows: nq, inFeatures: d, outFeatures: d, weight: wOut, bias: bOut.value,
            output: output.pointer)
        return output.pointer
    }

    /// Rebuilds the dropped-out probabilities of the last forward from the stashed probabilities
    /// and the counter-based dropout mask (same elements, same site, same context), so a stash
    /// that was packed without them (Float16 activations) is complete again before backward.
    func restoreDroppedProbabilities() {
        guard dropout.isActive else { return }
        let a = activations, count = shape.probabilityCount
        a.dropped.resize(count)
        Dropout.apply(a.probs.pointer, a.dropped.pointer, count: count, context: dropout, site: site)
    }

    /// dx (+)= d(attention)/dx^T dy; for cross-attention also memoryGradient += d/dmemory.
    func backward(
        _ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, accumulate: Bool,
        memoryGradient: UnsafeMutablePointer<Float>?, workspace ws: Workspace
    ) {
        guard let input else { preconditionFailure("MultiHeadAttention.backward before forward") }
        let nq = shape.batch * shape.queryLength, nk = shape.batch * shape.keyLength
        let a = activations, context = a.context, probs = a.probs, projections = a.projections
        ws.context.resize(nq * d)
        ws.scores.resize(shape.probabilityCount)
        Linear.backward(
            dy, input: context.pointer, rows: nq, inFeatures: d, outFeatures: d, weight: wOut.value,
            inputGradient: ws.context.pointer, accumulateInput: false, weightGradient: wOut.grad,
            biasGradient: bOut.grad)
        let dropped = dropout.isActive ? a.dropped.pointer : probs.pointer
        if let memory {
            guard let memoryGradient else { preconditionFailure("cross-attention backward needs a memory gradient") }
            ws.projections.resize(nq * d)
            ws.keyValues.resize(nk * 2 * d)
            let kv = a.keyValues.pointer, dkv = ws.keyValues.pointer
            AttentionKernel.backward(
                outputGradient: ws.context.pointer, q: projections.pointer, ldq: d, k: kv, ldk: 2 * d,
                v: kv + d, ldv: 2 * d, probs: probs.pointer, dropped: dropped, shape: shape,
                dropout: dropout, dq: ws.projections.pointer, dk: dkv, dv: dkv + d,
                scratch: ws.scores.pointer)
            Linear.backward(
                ws.projections.pointer, input: input, rows: nq, inFeatures: d, outFeatures: d, weight: wIn.value,
                inputGradient: dx, accumulateInput: accumulate, weightGradient: wIn.grad, biasGradient: bIn.grad)
            Linear.backward(
                dkv, input: memory, rows: nk, inFeatures: d, outFeatures: 2 * d, weight: wIn.value + d * d,
                inputGradient: memoryGradient, accumulateInput: true, weightGradient: wIn.grad + d * d,
                biasGradient: bIn.grad + d)
        } else {
            ws.projections.resize(nq * 3 * d)
            let p = projections.pointer, dp = ws.projections.pointer
            AttentionKernel.backward(
                outputGradient: ws.context.pointer, q: p, ldq: 3 * d, k: p + d, ldk: 3 * d,
                v: p + 2 * d, ldv: 3 * d, probs: probs.pointer, dropped: dropped, shape: shape,
                dropout: dropout, dq: dp, dk: dp + d, dv: dp + 2 * d, scratch: ws.scores.pointer)
            Linear.backward(
                dp, input: input, rows: nq, inFeatures: d, outFeatures: 3 * d, weight: wIn.value,
                inputGradient: dx, accumulateInput: accumulate, weightGradient: wIn.grad, biasGradient: bIn.grad)
        }
    }
}
