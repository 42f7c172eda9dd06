import TensorCore

/// The keys and values one decoder layer keeps across incremental decoding steps (see
/// `DecoderLayer.step` and `IncrementalDecoder`).
final class KeyValueCache {
    /// Self-attention keys then values of every decoded position, [B, capacity, 2D].
    let selfKeyValues = FloatBuffer()
    /// Cross-attention keys then values of the encoder memory, [B*Ss, 2D], projected once per
    /// source batch.
    let crossKeyValues = FloatBuffer()
    /// Positions each sequence's self-attention rows can hold.
    private(set) var capacity = 0
    /// Keys per sequence in `crossKeyValues`.
    private(set) var sourceLength = 0

    /// Sizes the cache for `rows` sequences of up to `capacity` positions over `sourceLength`
    /// source positions, of width `dModel` (contents unspecified until written).
    func reset(rows: Int, capacity: Int, sourceLength: Int, dModel d: Int) {
        self.capacity = capacity
        self.sourceLength = sourceLength
        selfKeyValues.resize(rows * capacity * 2 * d)
        crossKeyValues.resize(rows * sourceLength * 2 * d)
    }
}
