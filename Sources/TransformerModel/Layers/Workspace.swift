import TensorCore

/// Gradient buffers shared by all layers during backward. Backward visits one layer at a time, so
/// one set of scratch buffers serves the whole network (instead of one per layer).
package final class Workspace {
    /// d(activation) flowing down the stack being differentiated, [N, D].
    let flow = FloatBuffer()
    /// d(memory) accumulated by every cross-attention, [B*Ss, D].
    let memoryGradient = FloatBuffer()
    let sublayer = FloatBuffer()  // [N, D]
    let normInput = FloatBuffer()  // [N, D]
    let context = FloatBuffer()  // [N, D]
    let projections = FloatBuffer()  // [N, 3D] (self) or [N, D] (cross queries)
    let keyValues = FloatBuffer()  // [Nk, 2D]
    let scores = FloatBuffer()  // [B, H, Sq, Sk]
    let hidden = FloatBuffer()  // [N, F]

    package init() {}

    var allocatedBytes: Int {
        [flow, memoryGradient, sublayer, normInput, context, projections, keyValues, scores, hidden]
            .reduce(0) { $0 + $1.allocatedBytes }
    }
}
