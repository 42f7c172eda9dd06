import Foundation

/// A byte-pair-encoding tokenizer with a shared source/target vocabulary, bit-compatible with the
/// Hugging Face `tokenizers` library (BPE model, Metaspace pre-tokenizer and decoder, no normalizer).
///
/// Ids 0...3 are the special tokens `<pad>`, `<s>`, `</s>`, `<unk>`; then come the single characters
/// (Unicode scalars) of the alphabet, then the merged tokens. Text is handled as Unicode scalars, never
/// as Swift `Character`s, because `tokenizers` works on code points and does not normalize.
public struct BPETokenizer: Sendable {
    /// The id of `</s>` (end of sentence), as `SpecialTokens.eos`.
    public static let eosID: Int32 = 2
    /// The id of `<unk>`, given to characters outside the alphabet, as `SpecialTokens.unk`.
    public static let unkID: Int32 = 3

    /// One learned merge: `left` followed by `right` becomes `result` (ids).
    public struct Merge: Sendable, Equatable {
        /// The id of the first token of the pair.
        public let left: Int32
        /// The id of the second token of the pair.
        public let right: Int32
        /// The id of the merged token.
        public let result: Int32

        /// A merge of `left` then `right` into `result`.
        public init(left: Int32, right: Int32, result: Int32) {
            self.left = left
            self.right = right
            self.result = result
        }
    }

    /// Token texts as Unicode scalar values, indexed by id.
    let tokens: [[UInt32]]
    /// The merges in priority order (earlier merges apply first).
    public let merges: [Merge]
    /// Single-scalar tokens: id by scalar value for the scalars below `directScalars` ...
    private let directScalarIDs: [Int32]
    /// ... and for the others.
    private let otherScalarIDs: [UInt32: Int32]
    /// (left << 32 | right) -> (rank, result id).
    private let mergeTable: PairTable
    /// Covers Latin, Greek, Cyrillic, general punctuation and "▁" (U+2581).
    private static let directScalars: UInt32 = 0x3000

    /// Builds a tokenizer from its token texts (by id) and merges; the caller has validated them.
    init(tokens: [[UInt32]], merges: [Merge]) {
        self.tokens = tokens
        self.merges = merges
        var direct = [Int32](repeating: Self.unkID, count: Int(Self.directScalars))
        var other: [UInt32: Int32] = [:]
        for (id, token) in tokens.enumerated() where id > Int(Self.unkID) && token.count == 1 {
            if token[0] < Self.directScalars { direct[Int(token[0])] = Int32(id) } else { other[token[0]] = Int32(id) }
        }
        self.directScalarIDs = direct
        self.otherScalarIDs = other
        var mergeTable = PairTable(capacityFor: merges.count)
        for (rank, merge) in merges.enumerated() {
            // Like `tokenizers`, a pair listed twice keeps its last rank.
            mergeTable.set(Self.pairKey(merge.left, merge.right), rank: Int32(rank), result: merge.result)
        }
        self.mergeTable = mergeTable
    }

    @inline(__always) static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Number of entries in the vocabulary (specials included).
    public var vocabSize: Int { tokens.count }

    /// The text of token `id` (nil when out of range).
    public func token(for id: Int32) -> String? {
        guard id >= 0, Int(id) < tokens.count else { return nil }
        return Self.string(tokens[Int(id)])
    }

    static func string(_ scalars: [UInt32]) -> String {
        var view = String.UnicodeScalarView()
        for value in scalars { if let s = Unicode.Scalar(value) { view.append(s) } }
        return String(view)
    }

    /// Stable digest of the vocabulary and the merges: FNV-1a 64 over the token texts in id order
    /// (UTF-32 code points, each token terminated by 0xFFFFFFFF) followed by the merges as id triples,
    /// as 16 lowercase hex digits. It does not depend on hashing seeds, platform or JSON formatting.
    public var hash: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        @inline(__always) func mix(_ word: UInt32) {
            for shift in stride(from: 0, to: 32, by: 8) {
                h ^= UInt64((word >> UInt32(shift)) & 0xFF)
                h = h &* 0x0000_0100_0000_01B3
            }
        }
        mix(UInt32(tokens.count))
        for token in tokens {
            for value in token { mix(value) }
            mix(0xFFFF_FFFF)
        }
        mix(UInt32(merges.count))
        for m in merges {
            mix(UInt32(bitPattern: m.left))
            mix(UInt32(bitPattern: m.right))
            mix(UInt32(bitPattern: m.result))
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: Encoding

    /// The ids of `text`, without BOS/EOS, exactly as `tokenizers`' `encode(text, add_special_tokens=False).ids`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        Metaspace.forEachPiece(of: text) { piece in
            switch piece {
            case let .special(id): ids.append(id)
            case let .word(word): encodeWord(word, into: &ids)
            }
        }
        return ids
    }

    /// Encodes many lines. No word cache: with the open-addressing merge table, recomputing a word
    /// is faster than hashing it into a cache (measured on the en-de corpus).
    public func encode(lines: [String]) -> [[Int32]] {
        // `encode` keeps no state, so large inputs (a whole corpus) are spread over the cores;
        // each chunk writes only its own slots.
        let n = lines.count,
            chunks = Swift.max(1, Swift.min(ProcessInfo.processInfo.activeProcessorCount * 2, n / 1000))
        guard chunks > 1 else { return lines.map { encode($0) } }
        var results = [[Int32]](repeating: [], count: n)
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = EncodedSlots(base: buffer.baseAddress)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (c * n / chunks)..<((c + 1) * n / chunks) { slots.base?[i] = encode(lines[i]) }
            }
        }
        return results
    }

    /// Words longer than this many characters are merged by `mergeLongWord`: the scan below costs
    /// O(n^2) per word (a 100,000-character line of base64 took minutes), the heap O(n log n).
    static let longWord = 48

    /// BPE on one pre-tokenized word: start from single characters (unknown ones become `<unk>`), then
    /// repeatedly apply the best-ranked adjacent merge, leftmost first on equal rank. This is the order
    /// `tokenizers`' heap (min by rank, then position) produces.
    func encodeWord(_ word: ArraySlice<UInt32>, into ids: inout [Int32]) {
        let start = ids.count
        for scalar in word { ids.append(characterID(scalar)) }
        if ids.count - start > Self.longWord {
            mergeLongWord(&ids, from: start)
            return
        }
        mergeByScanning(&ids, from: start)
    }

    /// The id of one character before any merge (`<unk>` outside the alphabet).
    @inline(__always) package func characterID(_ scalar: UInt32) -> Int32 {
        scalar < Self.directScalars ? directScalarIDs[Int(scalar)] : otherScalarIDs[scalar] ?? Self.unkID
    }

    /// The merges of `ids[start...]` by scanning for the best pair before each merge.
    package func mergeByScanning(_ ids: inout [Int32], from start: Int) {
        while ids.count - start > 1 {
            var bestRank = Int32.max
            var bestIndex = -1
            var bestResult: Int32 = 0
            for i in start..<(ids.count - 1) {
                if let entry = mergeTable.get(Self.pairKey(ids[i], ids[i + 1])), entry.rank < bestRank {
                    bestRank = entry.rank
                    bestIndex = i
                    bestResult = entry.result
                }
            }
            if bestIndex < 0 { break }
            ids[bestIndex] = bestResult
            ids.remove(at: bestIndex + 1)
        }
    }

    /// The same merges as `mergeByScanning`, in the same order, with a min-heap of (rank, position)
    /// over a linked list of symbols: a position is its symbol's original index, so the smallest
    /// live position is the leftmost pair. An entry is stale when its left symbol was merged away
    /// or its pair changed (ranks are unique, so an unchanged rank means an unchanged pair).
    package func mergeLongWord(_ ids: inout [Int32], from start: Int) {
        let n = ids.count - start
        guard n > 1 else { return }
        var symbol = Array(ids[start...])
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var previous = (0..<n).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = RankHeap()
        for i in 0..<(n - 1) {
            if let entry = mergeTable.get(Self.pairKey(symbol[i], symbol[i + 1])) { heap.push(entry.rank, i) }
        }
        while let (rank, i) = heap.pop() {
            let j = next[i]
            guard alive[i], j >= 0, let entry = mergeTable.get(Self.pairKey(symbol[i], symbol[j])), entry.rank == rank
            else { continue }
            symbol[i] = entry.result
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { previous[next[j]] = i }
            if previous[i] >= 0, let left = mergeTable.get(Self.pairKey(symbol[previous[i]], symbol[i])) {
                heap.push(left.rank, previous[i])
            }
            if next[i] >= 0, let right = mergeTable.get(Self.pairKey(symbol[i], symbol[next[i]])) {
                heap.push(right.rank, i)
            }
        }
        ids.removeSubrange(start...)
        var i = 0
        while i >= 0 {
            ids.append(symbol[i])
            i = next[i]
        }
    }

    // MARK: Decoding

    /// The text of `ids`: PAD, BOS, EOS and out-of-range ids are skipped, `<unk>` stays as "<unk>",
    /// "▁" becomes a space (dropped in the first token). Equals `tokenizers`' `decode(ids,
    /// skip_special_tokens=False)` once PAD/BOS/EOS are removed, and inverts `encode` for text that
    /// does not start with a space and has no characters outside the alphabet (repeated and trailing
    /// spaces survive).
    public func decode(_ ids: [Int32]) -> String {
        var pieces: [[UInt32]] = []
        pieces.reserveCapacity(ids.count)
        for id in ids where id > Self.eosID && Int(id) < tokens.count {
            pieces.append(tokens[Int(id)])
        }
        return Metaspace.decode(pieces)
    }
}

/// The output slots of `encode(lines:)`, written concurrently at disjoint indices.
private struct EncodedSlots: @unchecked Sendable {
    let base: UnsafeMutablePointer<[Int32]>?
}

/// A binary min-heap of (rank, position) pairs, ordered by rank, then position.
struct RankHeap {
    private var items: [(rank: Int32, position: Int)] = []

    private static func less(_ a: (rank: Int32, position: Int), _ b: (rank: Int32, position: Int)) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.position < b.position
    }

    mutating func push(_ rank: Int32, _ position: Int) {
        items.append((rank, position))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Int32, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, Self.less(items[left], items[smallest]) { smallest = left }
                if right < items.count, Self.less(items[right], items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (top.rank, top.position)
    }
}
