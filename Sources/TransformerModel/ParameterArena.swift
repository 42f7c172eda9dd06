import TensorCore

/// A tensor's value and gradient pointers inside the two arenas.
///
/// With Float16 parameters, a matrix's `value` is the arena's Float32 staging window: reading
/// `value` first converts the matrix from its Float16 copy into the window (unless the window
/// already holds it), so every use of `value` must come right before the computation that reads
/// it, and two staged matrices are never used in one call.
package struct ParameterRef {
    private let pointer: UnsafeMutablePointer<Float>
    package let grad: UnsafeMutablePointer<Float>
    /// Float16 parameters, matrices only: the window and this tensor's place in the Float16 copy.
    let staging: ParameterStaging?
    let stagedOffset: Int, stagedCount: Int

    init(
        value: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>,
        staging: ParameterStaging? = nil, offset: Int = 0, count: Int = 0
    ) {
        pointer = value
        self.grad = grad
        self.staging = staging
        stagedOffset = offset
        stagedCount = count
    }

    /// The tensor's Float32 values (staged into the window first when parameters are Float16).
    package var value: UnsafeMutablePointer<Float> {
        if let staging { staging.stage(offset: stagedOffset, count: stagedCount) }
        return pointer
    }

    /// The tensor's Float16 copy when it is staged (row-wise readers such as the embedding
    /// convert only the rows they need), nil when `value` is the tensor itself.
    var halfValues: UnsafePointer<UInt16>? { staging.map { UnsafePointer($0.halves.pointer + stagedOffset) } }
}

/// The Float32 window matrices are converted into from their Float16 copy, one at a time.
final class ParameterStaging {
    let halves: HalfBuffer
    let window: FloatBuffer
    /// Offset (in the Float16 copy) and count of what the window holds; -1 when nothing valid.
    private var occupant = -1, occupantCount = 0
    /// Conversions into the window so far (a diagnostic: decoding's few-row products make none).
    private(set) var conversions = 0

    init(halves: HalfBuffer, windowCount: Int) {
        self.halves = halves
        window = FloatBuffer(count: windowCount)
    }

    /// Converts `count` values at `offset` of the Float16 copy into the window.
    func stage(offset: Int, count: Int) {
        guard offset != occupant || count != occupantCount else { return }
        precondition(count <= window.count, "Float16 parameters: a tensor larger than the staging window")
        Half.decode(halves.pointer + offset, window.pointer, count: count)
        conversions += 1
        occupant = offset
        occupantCount = count
    }

    /// The Float16 copy changed: the window no longer holds anything valid.
    func invalidate() {
        occupant = -1
        occupantCount = 0
    }
}

/// All parameters in one contiguous buffer and all gradients in another, both laid out by
/// `ParameterLayout`. The buffers are allocated once and never move, so layers keep raw pointers.
///
/// With `float16` (a replica's `training.float16.parameters`), there is no Float32 `values`
/// buffer: matrices live in a Float16 copy laid out by the same table and are converted into one
/// Float32 window, the size of the largest layer matrix, when a layer uses them; vectors (biases,
/// LayerNorm) are small and stay Float32. Gradients are Float32 in both modes.
public final class ParameterArena {
    /// Names, shapes and offsets of every parameter (PyTorch state_dict order).
    public let layout: ParameterLayout
    package let gradients: FloatBuffer
    /// True when parameters are stored in Float16.
    package let isFloat16: Bool
    private let float32: FloatBuffer?
    /// Float16 mode: the Float16 copy (full layout), the window, and the vectors in Float32 at the
    /// same offsets as the layout, compacted (`residentOffsets`, -1 for staged tensors).
    private let staging: ParameterStaging?
    private let resident: FloatBuffer?
    private let residentOffsets: [Int]

    package init(layout: ParameterLayout, float16: Bool = false) {
        self.layout = layout
        gradients = FloatBuffer(count: layout.totalCount)
        isFloat16 = float16
        guard float16 else {
            float32 = FloatBuffer(count: layout.totalCount)
            staging = nil
            resident = nil
            residentOffsets = []
            return
        }
        float32 = nil
        var offsets: [Int] = [], residentCount = 0, window = 0
        for e in layout.entries {
            if ParameterArena.isStaged(e) {
                offsets.append(-1)
                if !ParameterArena.isChunked(e) { window = max(window, e.count) }
            } else {
                offsets.append(residentCount)
                residentCount += (e.count + 15) / 16 * 16
            }
        }
        // The output projection goes through the window in chunks of rows: at least one row.
        let width = layout.entries.first?.shape.last ?? 1
        staging = ParameterStaging(halves: HalfBuffer(count: layout.totalCount), windowCount: max(window, width))
        resident = FloatBuffer(count: residentCount)
        residentOffsets = offsets
    }

    /// Matrices (rank 2) are stored in Float16 and staged; vectors stay Float32.
    static func isStaged(_ e: ParameterEntry) -> Bool { e.shape.count >= 2 }
    /// The vocabulary matrices are staged in chunks of rows (output projection) or row by row
    /// (embedding lookup), never whole.
    static func isChunked(_ e: ParameterEntry) -> Bool { e.name == "embedding.weight" || e.name == "generator.weight" }

    /// The Float32 parameters laid out by `layout`. Not available with Float16 parameters (use
    /// `loadParameters` / `readParameters`): asking for it then is a programming error.
    /// Float16 parameters: how many times a matrix (or a chunk of one) was converted into the
    /// staging window so far; 0 with Float32 parameters. Products of at most `BLAS.fewRows` rows
    /// read the Float16 copy in place, so decoding a short batch converts nothing.
    package var stagingConversions: Int { staging?.conversions ?? 0 }

    package var values: FloatBuffer {
        guard let float32 else {
            preconditionFailure(
                "ParameterArena.values: parameters are stored in Float16; use loadParameters/readParameters")
        }
        return float32
    }

    package func ref(_ name: String) -> ParameterRef {
        guard let i = layout.entries.firstIndex(where: { $0.name == name }) else {
            preconditionFailure("no parameter named \(name)")
        }
        let e = layout.entries[i], grad = gradients.pointer + e.offset
        if let float32 { return ParameterRef(value: float32.pointer + e.offset, grad: grad) }
        guard let staging, let resident else { preconditionFailure("Float16 arena without storage") }
        if residentOffsets[i] >= 0 { return ParameterRef(value: resident.pointer + residentOffsets[i], grad: grad) }
        return ParameterRef(
            value: staging.window.pointer, grad: grad, staging: staging, offset: e.offset, count: e.count)
    }

    package func zeroGradients() { gradients.zero() }

    /// Bytes that hold the parameter values: the Float32 buffer, or the Float16 copy plus the
    /// Float32 vectors and the staging window. Gradients are not included.
    package var storageBytes: Int {
        if let float32 { return float32.allocatedBytes }
        return (staging?.halves.allocatedBytes ?? 0) + (staging?.window.allocatedBytes ?? 0)
            + (resident?.allocatedBytes ?? 0)
    }

    /// Overwrites every parameter from Float32 values laid out by `layout` (`layout.totalCount`
    /// floats): a plain copy, or rounding to Float16 (nearest even) with Float16 parameters.
    package func loadParameters(from source: UnsafePointer<Float>) {
        if let float32 {
            float32.pointer.update(from: source, count: layout.totalCount)
            return
        }
        guard let staging, let resident else { return }
        for (i, e) in layout.entries.enumerated() {
            if residentOffsets[i] >= 0 {
                (resident.pointer + residentOffsets[i]).update(from: source + e.offset, count: e.count)
            } else {
                Half.encode(source + e.offset, staging.halves.pointer + e.offset, count: e.count)
            }
        }
        staging.invalidate()
    }

    /// Overwrites every parameter from Float16 values (raw bits) laid out by `layout`. With Float16
    /// parameters matrices are copied bit for bit; Float32 storage receives the exact conversions.
    package func loadParameters(half source: UnsafePointer<UInt16>) {
        for (i, e) in layout.entries.enumerated() {
            if let float32 {
                Half.decode(source + e.offset, float32.pointer + e.offset, count: e.count)
            } else if let staging, let resident {
                if residentOffsets[i] >= 0 {
                    Half.decode(source + e.offset, resident.pointer + residentOffsets[i], count: e.count)
                } else {
                    (staging.halves.pointer + e.offset).update(from: source + e.offset, count: e.count)
                }
            }
        }
        staging?.invalidate()
    }

    /// Writes every parameter as Float32 laid out by `layout` (`layout.totalCount` floats; the
    /// alignment padding between tensors is set to zero).
    package func readParameters(into destination: UnsafeMutablePointer<Float>) {
        if let float32 {
            destination.update(from: float32.pointer, count: layout.totalCount)
            return
        }
        destination.update(repeating: 0, count: layout.totalCount)
        for (i, e) in layout.entries.enumerated() {
            if let resident, residentOffsets[i] >= 0 {
                (destination + e.offset).update(from: resident.pointer + residentOffsets[i], count: e.count)
            } else if let staging {
                Half.decode(staging.halves.pointer + e.offset, destination + e.offset, count: e.count)
            }
        }
    }

    /// Copies of one tensor (tests and inspection).
    package func value(_ name: String) -> [Float] {
        guard let i = layout.entries.firstIndex(where: { $0.name == name }) else { return [] }
        let e = layout.entries[i]
        var out = [Float](repeating: 0, count: e.count)
        out.withUnsafeMutableBufferPointer { read(entry: i, into: $0.baseAddress!) }
        return out
    }

    package func gradient(_ name: String) -> [Float] {
        guard let e = layout[name] else { return [] }
        return Array(UnsafeBufferPointer(start: gradients.pointer + e.offset, count: e.count))
    }

    /// Overwrites one tensor (rounded to Float16 for a staged matrix of a Float16 arena); false if
    /// the name is unknown or the size differs.
    @discardableResult
    package func setValue(_ name: String, _ data: [Float]) -> Bool {
        guard let i = layout.entries.firstIndex(where: { $0.name == name }), layout.entries[i].count == data.count
        else {
            return false
        }
        data.withUnsafeBufferPointer { write(entry: i, from: $0.baseAddress!) }
        return true
    }

    /// Reads entry `i` as Float32.
    func read(entry i: Int, into destination: UnsafeMutablePointer<Float>) {
        let e = layout.entries[i]
        if let float32 {
            destination.update(from: float32.pointer + e.offset, count: e.count)
        } else if let resident, residentOffsets[i] >= 0 {
            destination.update(from: resident.pointer + residentOffsets[i], count: e.count)
        } else if let staging {
            Half.decode(staging.halves.pointer + e.offset, destination, count: e.count)
        }
    }

    /// Writes entry `i` from Float32 (rounded when it is a staged matrix).
    func write(entry i: Int, from source: UnsafePointer<Float>) {
        let e = layout.entries[i]
        if let float32 {
            (float32.pointer + e.offset).update(from: source, count: e.count)
        } else if let resident, residentOffsets[i] >= 0 {
            (resident.pointer + residentOffsets[i]).update(from: source, count: e.count)
        } else if let staging {
            Half.encode(source, staging.halves.pointer + e.offset, count: e.count)
            staging.invalidate()
        }
    }
}
