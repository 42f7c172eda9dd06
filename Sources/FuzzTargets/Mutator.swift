/// SplitMix64: a small deterministic generator, so a fuzz run is reproducible from its seed.
package struct FuzzRandom {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476C_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<bound (bound > 0).
    package mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Deterministic mutations of fuzz inputs: bit flips, byte insertion and deletion, splices between
/// corpus entries, interesting integers over (aligned) length fields, and for JSON text, number,
/// string and structure replacements. Used where libFuzzer is not (the XCTest smoke runs and
/// `Scripts/fuzz --engine mutation`).
package struct Mutator {
    package var random: FuzzRandom
    let isJSON: Bool
    /// Longest input produced; mutations that would grow beyond it shrink instead.
    let maxLength: Int

    package init(seed: UInt64, isJSON: Bool, maxLength: Int = 1 << 16) {
        random = FuzzRandom(seed: seed)
        self.isJSON = isJSON
        self.maxLength = maxLength
    }

    /// Integers at the edges of ranges, written over length and count fields.
    static let interestingIntegers: [UInt64] = [
        0, 1, 2, 7, 8, 16, 111, 112, 113, 127, 128, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 0x4000_0000_0000_0000, 0x2000_0000_0000_0001,
    ]

    static let jsonNumbers = [
        "0", "-0", "1", "-1", "4", "8", "1.5", "1e999", "-1e999", "1e-400", "2147483647", "2147483648", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "1e19", "0.1", "3.0", "1E2", "00", "-", "1.", ".5", "1e",
    ]
    static let jsonStrings = [
        "\"\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\ud83d\\ude00\"", "\"\u{2581}\"",
        "\"e\u{301}\"",
        "\"<unk>\"", "\"<s>\"", "\"F32\"", "\"F16\"", "\"BPE\"", "\"Metaspace\"", "\"always\"", "\"crc32\"", "\"\\\"\"",
        "\"\\\\\"", "\"\\x\"", "\"abc", "\"\u{7F}\"",
    ]
    static let jsonFragments = [
        "{", "}", "[", "]", ",", ":", "null", "true", "false", "{}", "[]", "[[]]", "{\"\":0}", "\"a\":1,", "  ", "\n",
        "\u{0}", "\u{FEFF}",
    ]

    /// A mutant of `input`, possibly spliced with `other`; one to four mutations stacked.
    package mutating func mutate(_ input: [UInt8], other: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...random.below(4) {
            if isJSON && random.below(2) == 0 { jsonMutation(&bytes) } else { byteMutation(&bytes, other: other) }
        }
        if bytes.count > maxLength { bytes.removeLast(bytes.count - maxLength) }
        return bytes
    }

    private mutating func byteMutation(_ bytes: inout [UInt8], other: [UInt8]) {
        switch random.below(10) {
        case 0 where !bytes.isEmpty:  // flip a bit
            let i = random.below(bytes.count)
            bytes[i] ^= UInt8(1) << UInt8(random.below(8))
        case 1 where !bytes.isEmpty:  // set a byte
            bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
        case 2:  // insert bytes
            let n = 1 + random.below(8)
            let at = random.below(bytes.count + 1)
            bytes.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        case 3 where !bytes.isEmpty:  // delete a range
            let at = random.below(bytes.count)
            let n = 1 + random.below(min(16, bytes.count - at))
            bytes.removeSubrange(at..<(at + n))
        case 4 where !bytes.isEmpty:  // duplicate a range
            let at = random.below(bytes.count)
            let n = 1 + random.below(min(64, bytes.count - at))
            let piece = Array(bytes[at..<(at + n)])
            bytes.insert(contentsOf: piece, at: random.below(bytes.count + 1))
        case 5, 6:  // an interesting integer, often over an 8-byte-aligned field (lengths, counts)
            let value = Self.interestingIntegers[random.below(Self.interestingIntegers.count)]
            let width = [1, 2, 4, 8][random.below(4)]
            guard bytes.count >= width else { return }
            var at = random.below(bytes.count - width + 1)
            if random.below(2) == 0 { at -= at % 8 }
            for k in 0..<width { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        case 7 where !other.isEmpty:  // splice: a prefix of this input, a suffix of another
            let cut = random.below(bytes.count + 1)
            let from = random.below(other.count)
            bytes = Array(bytes[..<cut]) + other[from...]
        case 8 where !bytes.isEmpty:  // truncate
            bytes.removeLast(1 + random.below(bytes.count))
        default:  // add or subtract a small amount from a byte
            guard !bytes.isEmpty else {
                bytes.append(UInt8(truncatingIfNeeded: random.next()))
                return
            }
            let i = random.below(bytes.count)
            bytes[i] = bytes[i] &+ UInt8(truncatingIfNeeded: random.below(7) - 3)
        }
    }

    /// Replaces a token of the JSON text (a number, a string, a bracket) with another one.
    private mutating func jsonMutation(_ bytes: inout [UInt8]) {
        let tokens = Self.jsonTokens(bytes)
        let replacement: String
        switch random.below(4) {
        case 0: replacement = Self.jsonNumbers[random.below(Self.jsonNumbers.count)]
        case 1: replacement = Self.jsonStrings[random.below(Self.jsonStrings.count)]
        case 2: replacement = Self.jsonFragments[random.below(Self.jsonFragments.count)]
        default:
            if random.below(8) == 0 {  // nesting at and beyond the parsers' depth limits
                let depth = [2, 511, 512, 513, 5000][random.below(5)]
                bytes =
                    Array(String(repeating: "[", count: depth).utf8) + bytes
                    + Array(String(repeating: "]", count: depth).utf8)
                return
            }
            replacement = ""  // delete the token
        }
        let range: Range<Int>
        if tokens.isEmpty || random.below(8) == 0 {
            let at = random.below(bytes.count + 1)
            range = at..<at
        } else {
            range = tokens[random.below(tokens.count)]
        }
        bytes.replaceSubrange(range, with: Array(replacement.utf8))
    }

    /// Byte ranges of JSON tokens: strings (with quotes), numbers and single structural bytes.
    static func jsonTokens(_ bytes: [UInt8]) -> [Range<Int>] {
        var tokens: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                var j = i + 1
                while j < bytes.count && bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
                let end = min(j + 1, bytes.count)
                tokens.append(i..<end)
                i = end
            } else if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) {
                var j = i + 1
                while j < bytes.count && "0123456789.eE+-".utf8.contains(bytes[j]) { j += 1 }
                tokens.append(i..<j)
                i = j
            } else {
                if "{}[],:".utf8.contains(c) { tokens.append(i..<(i + 1)) }
                i += 1
            }
        }
        return tokens
    }
}
