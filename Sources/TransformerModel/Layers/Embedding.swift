import TensorCore

#if canImport(Glibc)
    import Glibc
#endif

/// Token embedding scaled by sqrt(D), plus positions (sinusoidal table or learned), plus dropout.
final class Embedding {
    let table: ParameterRef
    let positional: ParameterRef?
    let d: Int
    let site: UInt32
    /// Sinusoidal table [maxLen, D] (empty when positions are learned or disabled).
    let sinusoids: FloatBuffer
    let output = FloatBuffer()
    /// One table row in Float32 (Float16 parameters only).
    private let rowScratch = FloatBuffer()
    private var tokens: UnsafePointer<Int32>?
    private var rows = 0, length = 0
    private var dropout = DropoutContext.disabled

    init(_ arena: ParameterArena, config c: ModelConfig, site: UInt32) {
        table = arena.ref("embedding.weight")
        positional = c.positional == .learned ? arena.ref("positional.weight") : nil
        d = c.dModel
        self.site = site
        sinusoids =
            c.positional == .sinusoidal
            ? FloatBuffer(PositionalEncoding.sinusoids(length: c.maxLen, width: c.dModel)) : FloatBuffer()
    }

    /// Embeds `tokens` [batch, length] whose first position is `positionOffset`.
    @discardableResult
    func forward(
        _ tokens: UnsafePointer<Int32>, batch: Int, length: Int, positionOffset: Int = 0,
        dropout: DropoutContext
    ) -> UnsafeMutablePointer<Float> {
        self.tokens = tokens
        rows = batch * length
        self.length = length
        self.dropout = dropout
        output.resize(rows * d)
        let scale = Float(d).squareRoot(), out = output.pointer
        // Float16 parameters: the table is never converted whole, only the rows looked up.
        let halfTable = table.halfValues
        if halfTable != nil { rowScratch.resize(d) }
        let e = halfTable == nil ? table.value : rowScratch.pointer
        let pos: UnsafePointer<Float>? =
            positional.map { UnsafePointer($0.value) }
            ?? (sinusoids.count > 0 ? UnsafePointer(sinusoids.pointer) : nil)
        for r in 0..<rows {
            let row: UnsafeMutablePointer<Float>
            if let halfTable {
                Half.decode(halfTable + Int(tokens[r]) * d, e, count: d)
                row = e
            } else {
                row = e + Int(tokens[r]) * d
            }
            let o = out + r * d
            if let pos {
                let p = pos + (positionOffset + r % length) * d
                for j in 0..<d { o[j] = row[j] * scale + p[j] }
            } else {
                for j in 0..<d { o[j] = row[j] * scale }
            }
        }
        Dropout.apply(out, out, count: rows * d, context: dropout, site: site)
        return out
    }

    /// Scatters d(output) into the embedding (and learned position) gradients.
    func backward(_ flow: UnsafeMutablePointer<Float>) {
        guard let tokens else { preconditionFailure("Embedding.backward before forward") }
        Dropout.apply(flow, flow, count: rows * d, context: dropout, site: site)
        let scale = Float(d).squareRoot(), g = table.grad
        for r in 0..<rows {
            let row = g + Int(tokens[r]) * d, f = flow + r * d
            for j in 0..<d { row[j] += f[j] * scale }
            if let positional {
                let p = positional.grad + (r % length) * d
                for j in 0..<d { p[j] += f[j] }
            }
        }
    }
}
