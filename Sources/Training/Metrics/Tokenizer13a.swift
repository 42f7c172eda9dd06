/// sacreBLEU's default `13a` tokenizer (the mteval-v13a.pl tokenization used by WMT), reproduced
/// step by step from sacreBLEU 2.x (`tokenizers/tokenizer_13a.py` and `tokenizer_re.py`).
///
/// Every rule works on Unicode scalars exactly as Python's `re.sub` scans a `str`: left to right,
/// non-overlapping matches, `[0-9]` meaning ASCII digits only, whitespace as Python's `str.split()`.
public enum Tokenizer13a {
    /// The tokenized line: tokens joined by single spaces, no leading or trailing space.
    /// Equal to `sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(line)`. (sacreBLEU's BLEU also
    /// applies `rstrip()` before this; `CorpusBLEU` does that.)
    public static func tokenize(_ line: String) -> String {
        var out = String.UnicodeScalarView()
        for (i, token) in tokens(Array(line.unicodeScalars)).enumerated() {
            if i > 0 { out.append(" ") }
            out.append(contentsOf: token)
        }
        return String(out)
    }

    /// The tokens of `line` (what `tokenize(line).split()` would give), as slices of one buffer.
    static func tokens(_ line: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        // Language-independent part.
        var s = line
        for (pattern, replacement) in replacements { s = PythonText.replace(s, pattern, replacement) }
        if s.contains("&") {
            for (pattern, replacement) in entities { s = PythonText.replace(s, pattern, replacement) }
        }
        // The f' {line} ' padding only adds spaces, which the final split removes again, but the
        // regexes see them (a leading "." is preceded by a non-digit).
        return PythonText.split(separatePunctuation(s))
    }

    private static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    /// The language-independent replacements, in sacreBLEU's order.
    private static let replacements = [("<skipped>", ""), ("-\n", ""), ("\n", " ")].map { (scalars($0), scalars($1)) }

    /// HTML entities, replaced only when the line contains "&" (in this order: "&amp;lt;" becomes "<").
    private static let entities = [("&quot;", "\""), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")].map {
        (scalars($0), scalars($1))
    }

    /// `[\{-\~\[-\` -\&\(-\+\:-\@\/]`: ASCII symbols that always become separate tokens
    /// (`{|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /`, but not `'` `-` `.` `,`).
    private static func isSymbol(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: return true
        default: return false
        }
    }

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
    private static func isPeriodOrComma(_ c: Unicode.Scalar) -> Bool { c == "." || c == "," }

    /// The four regular expressions of `TokenizerRegexp`, applied one after the other.
    private static func separatePunctuation(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let space: Unicode.Scalar = " "
        // 1. Symbols: ' \1 ' (with the padding space on either side of the line).
        var a: [Unicode.Scalar] = []
        a.reserveCapacity(input.count * 2 + 2)
        a.append(space)
        var periodOrComma = false, dash = false
        for c in input {
            if isSymbol(c) {
                a.append(space)
                a.append(c)
                a.append(space)
            } else {
                a.append(c)
                if isPeriodOrComma(c) { periodOrComma = true } else if c == "-" { dash = true }
            }
        }
        a.append(space)
        // Rules 2 to 4 only ever touch "." "," and "-".
        guard periodOrComma || dash else { return a }
        guard periodOrComma else { return separateDigitDash(a) }
        // 2. `([^0-9])([\.,])` -> `\1 \2 `: period and comma unless preceded by a digit.
        var b: [Unicode.Scalar] = []
        b.reserveCapacity(a.count + 16)
        var i = 0
        while i < a.count {
            if i + 1 < a.count, !isDigit(a[i]), isPeriodOrComma(a[i + 1]) {
                b.append(a[i])
                b.append(space)
                b.append(a[i + 1])
                b.append(space)
                i += 2
            } else {
                b.append(a[i])
                i += 1
            }
        }
        // 3. `([\.,])([^0-9])` -> ` \1 \2`: period and comma unless followed by a digit.
        var c: [Unicode.Scalar] = []
        c.reserveCapacity(b.count + 16)
        i = 0
        while i < b.count {
            if i + 1 < b.count, isPeriodOrComma(b[i]), !isDigit(b[i + 1]) {
                c.append(space)
                c.append(b[i])
                c.append(space)
                c.append(b[i + 1])
                i += 2
            } else {
                c.append(b[i])
                i += 1
            }
        }
        return dash ? separateDigitDash(c) : c
    }

    /// 4. `([0-9])(-)` -> `\1 \2 `: a dash preceded by a digit.
    private static func separateDigitDash(_ c: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let space: Unicode.Scalar = " "
        var d: [Unicode.Scalar] = []
        d.reserveCapacity(c.count + 8)
        var i = 0
        while i < c.count {
            if i + 1 < c.count, isDigit(c[i]), c[i + 1] == "-" {
                d.append(c[i])
                d.append(space)
                d.append("-")
                d.append(space)
                i += 2
            } else {
                d.append(c[i])
                i += 1
            }
        }
        return d
    }
}
