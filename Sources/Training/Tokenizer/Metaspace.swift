/// The Hugging Face `Metaspace` pre-tokenizer (replacement "▁", prepend_scheme "always", split true)
/// together with the special-token extraction that `tokenizers` performs before it.
///
/// Semantics, checked against `tokenizers` 0.23: the four special tokens are cut out of the raw
/// text first (leftmost match) and never split further. Each remaining segment has every U+0020
/// replaced by "▁", gets a "▁" prepended unless it already starts with one, and is split before
/// every "▁". Other whitespace (tab, newline, no-break space) is an ordinary character.
enum Metaspace {
    /// U+2581 LOWER ONE EIGHTH BLOCK.
    static let replacement: UInt32 = 0x2581
    static let space: UInt32 = 0x20

    /// The special tokens in id order (0 `<pad>`, 1 `<s>`, 2 `</s>`, 3 `<unk>`).
    static let specialTokens = ["<pad>", "<s>", "</s>", "<unk>"]
    private static let specialScalars: [[UInt32]] = specialTokens.map { $0.unicodeScalars.map(\.value) }

    /// A piece of input: a special token (its id) or a pre-tokenized word (scalar values, starting with "▁").
    enum Piece {
        case special(Int32)
        case word(ArraySlice<UInt32>)
    }

    /// Splits `text` into special tokens and words, in order, calling `body` for each.
    static func forEachPiece(of text: String, _ body: (Piece) -> Void) {
        let scalars = text.unicodeScalars.map(\.value)
        var segmentStart = 0
        var i = 0
        while i < scalars.count {
            if scalars[i] == 0x3C, let special = specialMatch(scalars, at: i) {
                words(in: scalars[segmentStart..<i], body)
                body(.special(Int32(special)))
                i += specialScalars[special].count
                segmentStart = i
            } else {
                i += 1
            }
        }
        words(in: scalars[segmentStart..<scalars.count], body)
    }

    /// The id of the special token that starts at `position`, if any (none is a prefix of another).
    private static func specialMatch(_ scalars: [UInt32], at position: Int) -> Int? {
        for (id, special) in specialScalars.enumerated() where position + special.count <= scalars.count {
            if scalars[position..<position + special.count].elementsEqual(special) { return id }
        }
        return nil
    }

    /// Metaspace on one segment between special tokens.
    private static func words(in segment: ArraySlice<UInt32>, _ body: (Piece) -> Void) {
        guard !segment.isEmpty else { return }
        var buffer: [UInt32] = []
        buffer.reserveCapacity(segment.count + 1)
        if segment[segment.startIndex] != space && segment[segment.startIndex] != replacement {
            buffer.append(replacement)
        }
        for s in segment { buffer.append(s == space ? replacement : s) }
        var start = 0
        for i in 1..<buffer.count where buffer[i] == replacement {
            body(.word(buffer[start..<i]))
            start = i
        }
        body(.word(buffer[start..<buffer.count]))
    }

    /// The Metaspace decoder: "▁" becomes a space, except in the first token where it is dropped.
    static func decode(_ tokens: [[UInt32]]) -> String {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(tokens.count * 8)
        for (i, token) in tokens.enumerated() {
            for value in token {
                if value == replacement {
                    if i > 0 { utf8.append(0x20) }
                } else if let scalar = Unicode.Scalar(value) {
                    UTF8.encode(scalar) { utf8.append($0) }
                }
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }
}
