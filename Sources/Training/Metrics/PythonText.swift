/// The few pieces of Python's `str` semantics that sacreBLEU's results depend on, on Unicode
/// scalars (Python strings are sequences of code points; Swift's `Character` and `String ==` work on
/// grapheme clusters and canonical equivalence, which would merge n-grams Python keeps apart).
enum PythonText {
    /// Exactly the code points for which Python's `str.isspace()` is true (what `str.split()` and
    /// `str.rstrip()` without arguments treat as whitespace). Note: U+200B is not among them.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A,
            0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `line.rstrip()`.
    static func rstrip(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var end = s.count
        while end > 0, isSpace(s[end - 1]) { end -= 1 }
        return end == s.count ? s : Array(s[0..<end])
    }

    /// `line.split()`: runs of whitespace separate tokens; no empty tokens. The tokens are slices
    /// of `s` (no copies).
    static func split(_ s: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var tokens: [ArraySlice<Unicode.Scalar>] = []
        var start = -1
        for i in s.indices {
            if isSpace(s[i]) {
                if start >= 0 {
                    tokens.append(s[start..<i])
                    start = -1
                }
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { tokens.append(s[start..<s.count]) }
        return tokens
    }

    /// `''.join(line.split())`: the line with every whitespace code point removed.
    static func removingSpaces(_ s: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.unicodeScalars.count)
        for c in s.unicodeScalars where !isSpace(c) { out.append(c) }
        return out
    }

    /// `s.replace(old, new)`: left to right, non-overlapping, like Python.
    static func replace(_ s: [Unicode.Scalar], _ pattern: [Unicode.Scalar], _ replacement: [Unicode.Scalar]) -> [Unicode
        .Scalar]
    {
        guard let first = pattern.first, s.count >= pattern.count, s.contains(first) else { return s }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        var replaced = false
        while i < s.count {
            if i + pattern.count <= s.count, s[i] == first, s[i..<(i + pattern.count)].elementsEqual(pattern) {
                out.append(contentsOf: replacement)
                i += pattern.count
                replaced = true
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return replaced ? out : s
    }
}
