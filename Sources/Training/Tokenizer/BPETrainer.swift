/// BPE training: count the words once, then merge with incrementally maintained pair counts.
///
/// Each step takes the most frequent adjacent pair; ties go to the pair with the smaller left id, then
/// the smaller right id (ids are themselves assigned deterministically: the alphabet sorted by code
/// point, merged tokens in creation order). Only the words that contain the merged pair are touched;
/// a lazy max-heap holds candidate (count, pair) entries and stale ones are skipped when popped.
extension BPETokenizer {
    /// Learns merges from the text lines until the vocabulary (4 specials + alphabet + merges) has
    /// `vocabSize` entries, or until no pair is left to merge. A TAB separates independent texts (both
    /// sides of a TSV line contribute; the TAB itself never becomes a character of the alphabet).
    public static func train(lines: [String], vocabSize: Int) throws(TokenizerError) -> BPETokenizer {
        var wordCounts: [ArraySlice<UInt32>: Int] = [:]
        for line in lines {
            for side in line.split(separator: "\t", omittingEmptySubsequences: true) {
                Metaspace.forEachPiece(of: String(side)) { piece in
                    if case let .word(word) = piece { wordCounts[word, default: 0] += 1 }
                }
            }
        }
        guard !wordCounts.isEmpty else { throw .emptyCorpus }

        // Sorting makes everything below independent of dictionary iteration order.
        let sortedWords = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        let alphabet = Set(sortedWords.lazy.flatMap(\.key)).sorted()
        let minimum = Metaspace.specialTokens.count + alphabet.count
        guard vocabSize >= minimum else { throw .vocabSizeTooSmall(requested: vocabSize, minimum: minimum) }

        var tokens: [[UInt32]] = Metaspace.specialTokens.map { $0.unicodeScalars.map(\.value) }
        var idOfScalar: [UInt32: Int32] = [:]
        for scalar in alphabet {
            idOfScalar[scalar] = Int32(tokens.count)
            tokens.append([scalar])
        }
        var words: [[Int32]] = []
        var counts: [Int] = []
        words.reserveCapacity(sortedWords.count)
        for (word, count) in sortedWords {
            words.append(word.map { idOfScalar[$0] ?? unkID })
            counts.append(count)
        }
        var state = PairState(words: words, counts: counts)
        var idOfToken: [[UInt32]: Int32] = [:]
        for (id, token) in tokens.enumerated() { idOfToken[token] = Int32(id) }
        var merges: [Merge] = []

        while tokens.count < vocabSize, let (left, right) = state.popBest() {
            let text = tokens[Int(left)] + tokens[Int(right)]
            // Two different pairs can spell the same token; like `tokenizers`' trainer, reuse its id.
            let result: Int32
            if let existing = idOfToken[text] {
                result = existing
            } else {
                result = Int32(tokens.count)
                tokens.append(text)
                idOfToken[text] = result
            }
            merges.append(Merge(left: left, right: right, result: result))
            state.merge(left, right, into: result)
        }
        return BPETokenizer(tokens: tokens, merges: merges)
    }
}

/// Words as symbol sequences, pair counts, the index pair -> words, and the candidate heap.
struct PairState {
    private var words: [[Int32]]
    private let counts: [Int]
    private var pairCounts: [UInt64: Int] = [:]
    /// Word indices that contained the pair at some point (may hold stale or repeated entries).
    private var wordsWithPair: [UInt64: [Int32]] = [:]
    private var heap = PairHeap()
    /// Per word: the merge number that last visited it, to process each word once per merge.
    private var visited: [Int]
    private var mergeNumber = 0

    init(words: [[Int32]], counts: [Int]) {
        self.words = words
        self.counts = counts
        self.visited = Array(repeating: -1, count: words.count)
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let key = BPETokenizer.pairKey(word[i], word[i + 1])
                pairCounts[key, default: 0] += counts[w]
                wordsWithPair[key, default: []].append(Int32(w))
            }
        }
        var entries: [PairHeap.Entry] = []
        entries.reserveCapacity(pairCounts.count)
        for (key, count) in pairCounts { entries.append(PairHeap.Entry(count: count, key: key)) }
        heap.build(entries)
    }

    /// The most frequent pair still present (count > 0), removed from the candidates.
    mutating func popBest() -> (Int32, Int32)? {
        while let entry = heap.pop() {
            guard let current = pairCounts[entry.key], current == entry.count, current > 0 else { continue }
            return (
                Int32(truncatingIfNeeded: Int64(entry.key >> 32)),
                Int32(bitPattern: UInt32(truncatingIfNeeded: entry.key))
            )
        }
        return nil
    }

    /// Replaces every occurrence of (left, right) by `result` (left to right, non-overlapping) and
    /// updates the counts of the neighbouring pairs.
    mutating func merge(_ left: Int32, _ right: Int32, into result: Int32) {
        mergeNumber += 1
        let mergedKey = BPETokenizer.pairKey(left, right)
        var changed: Set<UInt64> = []
        let candidates = wordsWithPair[mergedKey] ?? []
        wordsWithPair[mergedKey] = nil
        for w32 in candidates {
            let w = Int(w32)
            if visited[w] == mergeNumber { continue }
            visited[w] = mergeNumber
            let old = words[w]
            let count = counts[w]
            var new: [Int32] = []
            new.reserveCapacity(old.count)
            var i = 0
            var touched = false
            while i < old.count {
                if i + 1 < old.count, old[i] == left, old[i + 1] == right {
                    touched = true
                    add(mergedKey, -count, &changed)
                    if let previous = new.last {
                        add(BPETokenizer.pairKey(previous, left), -count, &changed)
                        add(BPETokenizer.pairKey(previous, result), count, &changed, word: w32)
                    }
                    if i + 2 < old.count {
                        add(BPETokenizer.pairKey(right, old[i + 2]), -count, &changed)
                        add(BPETokenizer.pairKey(result, old[i + 2]), count, &changed, word: w32)
                    }
                    new.append(result)
                    i += 2
                } else {
                    new.append(old[i])
                    i += 1
                }
            }
            if touched { words[w] = new }
        }
        for key in changed {
            let count = pairCounts[key] ?? 0
            if count > 0 { heap.push(PairHeap.Entry(count: count, key: key)) } else { pairCounts[key] = nil }
        }
    }

    @inline(__always)
    private mutating func add(_ key: UInt64, _ delta: Int, _ changed: inout Set<UInt64>, word: Int32? = nil) {
        pairCounts[key, default: 0] += delta
        changed.insert(key)
        if let word { wordsWithPair[key, default: []].append(word) }
    }
}

/// A binary max-heap of (count, pair); equal counts put the smaller pair key (left id, then right id) first.
struct PairHeap {
    struct Entry {
        let count: Int
        let key: UInt64
        @inline(__always) func isBetter(than other: Entry) -> Bool {
            count != other.count ? count > other.count : key < other.key
        }
    }

    private var items: [Entry] = []

    mutating func build(_ entries: [Entry]) {
        items = entries
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].isBetter(than: items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { return }
            var best = left
            if left + 1 < items.count, items[left + 1].isBetter(than: items[left]) { best = left + 1 }
            guard items[best].isBetter(than: items[parent]) else { return }
            items.swapAt(best, parent)
            parent = best
        }
    }
}
